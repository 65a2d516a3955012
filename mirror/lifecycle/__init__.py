"""Lifecycle jobs on the store: garbage collection now; eviction and usage reports later.

Everything here works through the `StorageDriver` alone (listing, reading, stat and
delete), so it runs on every driver, object stores included.
"""
