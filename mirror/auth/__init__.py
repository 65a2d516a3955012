"""Authentication and access control of clients (layer 3, beside `cache/`)."""
