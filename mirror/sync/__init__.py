"""Pre-seeding: images of the upstreams kept cached and fresh in the background.

`Syncer` makes one pass over a `SyncTarget` through the pull-through repositories
themselves (`PullThroughView`): the tag's revalidation is the pull path's (one HEAD, a GET
only when the digest moved, the same freshness stamps), blobs go through the same
single-flight downloads and land as ordinary cached content. `SyncJob` runs the passes
that are due, under one lease so that one process or replica syncs at a time. Synced
tags are marked in the metadata store (`marks`), for eviction to refresh, not evict.
"""
