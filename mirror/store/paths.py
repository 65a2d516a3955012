"""Where things live in a storage driver.

The layout is the reference registry's (CNCF Distribution), so a `registry:2` filesystem
root can be served by `mirror` as is and vice versa:

    /docker/registry/v2/blobs/<alg>/<hex[:2]>/<hex>/data
    /docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/link
    /docker/registry/v2/repositories/<name>/_manifests/revisions/<alg>/<hex>/link
    /docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
    /docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
    /docker/registry/v2/repositories/<name>/_uploads/<id>/{data,startedat}

plus additions of ours: the referrers API, an upload's data while its commit verifies
it (no longer `data`, so no chunk can be appended to what is being published), and the
upstreams a blob was cached from (by the first component of their cache repositories):

    /docker/registry/v2/repositories/<name>/_manifests/referrers/<alg>/<subject>/<alg>/<hex>/link
    /docker/registry/v2/repositories/<name>/_uploads/<id>/sealed

and, on drivers without append writers (object stores), an upload's chunks as objects of
their own, named by their offset, and its hash state after each (registry:2's name):

    /docker/registry/v2/repositories/<name>/_uploads/<id>/parts/<offset, 20 digits>
    /docker/registry/v2/repositories/<name>/_uploads/<id>/hashstates/<alg>/<offset>
    /docker/registry/v2/blobs/<alg>/<hex[:2]>/<hex>/origins/<upstream>
"""

from __future__ import annotations

from mirror.digests import Digest

ROOT = "/docker/registry/v2"
BLOBS = f"{ROOT}/blobs"
REPOSITORIES = f"{ROOT}/repositories"


def blob_data(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data"


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def blob_origin(digest: Digest, origin: str) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/origins/{origin}"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layer_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_layers/{digest.algorithm}/{digest.hex}/link"


def manifests_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests"


def revision_link(name: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/revisions/{digest.algorithm}/{digest.hex}/link"


def tags_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}"


def tag_current(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/current/link"


def tag_index_link(name: str, tag: str, digest: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/tags/{tag}/index/{digest.algorithm}/{digest.hex}/link"


def referrers_dir(name: str, subject: Digest) -> str:
    return f"{REPOSITORIES}/{name}/_manifests/referrers/{subject.algorithm}/{subject.hex}"


def referrer_link(name: str, subject: Digest, digest: Digest) -> str:
    return f"{referrers_dir(name, subject)}/{digest.algorithm}/{digest.hex}/link"


def uploads_dir(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/data"


def upload_sealed(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/sealed"


def upload_parts(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/parts"


def upload_part(name: str, upload_id: str, offset: int) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/parts/{offset:020d}"


def upload_hashstate(name: str, upload_id: str, algorithm: str, offset: int) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/hashstates/{algorithm}/{offset}"


def upload_started(name: str, upload_id: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads/{upload_id}/startedat"
