"""The store's ingest of blobs whose bytes are read while they are written (`staging`)."""
