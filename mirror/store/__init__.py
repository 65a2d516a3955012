"""Storage: drivers (bytes at paths) and the content-addressed registry store above them."""
