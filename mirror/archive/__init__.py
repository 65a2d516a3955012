"""Air-gapped replicas: the store, or part of it, as one OCI image layout tar, and back.

`export.Exporter` writes an archive from a `Store`; `importer.Importer` loads one into a
`Store`. Both go through the store's and the driver's APIs only, so they work on every
storage driver. The archive is an ordinary OCI image layout (`oci-layout`, `index.json`,
`blobs/<alg>/<hex>`) in a tar, which skopeo (`oci-archive:`) and containerd read too;
`format` defines how repositories and tags are written into it.
"""
