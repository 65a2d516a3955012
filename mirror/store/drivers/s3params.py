"""The `s3` driver's parameters: registry:2's names and meanings, validated without obstore.

Every registry:2 S3 parameter the issue lists is either honoured or refused with the
reason; nothing is accepted and then ignored:

- `region`, `bucket`, `rootdirectory` as in registry:2 (keys are
  ``<rootdirectory>/docker/registry/v2/...`` without a leading slash).
- `accesskey` / `secretkey`: static credentials; both absent means the usual AWS chain as
  obstore resolves it (``AWS_*`` environment variables, web identity tokens, ECS task
  roles, EC2 instance metadata).
- `regionendpoint` (an S3-compatible service; without a scheme, `secure` picks https or
  http), `forcepathstyle` (path-style addressing; otherwise the bucket goes into the host
  name, as registry:2's SDK does), `secure`, `skipverify`.
- `encrypt` (SSE-S3, AES256) and `keyid` (SSE-KMS with that key; needs `encrypt`).
- `chunksize`: the part size of multipart uploads (5 MiB to 5 GiB, default 10 MiB).
- `storageclass`: STANDARD (default) or NONE (send no header). Other classes are refused:
  obstore cannot set a class on server-side copies, so moved objects would silently land
  in STANDARD.
- `objectacl`: only "private" (S3's default for an object without an ACL header); obstore
  cannot send canned ACLs.
- `v4auth`: only true (obstore signs with Signature Version 4 only).
- `multipartcopychunksize`, `multipartcopymaxconcurrency`, `multipartcopythresholdsize`:
  refused: obstore has no multipart (UploadPartCopy) copy. Moves use one server-side
  CopyObject up to 5 GiB and stream larger objects through the driver in `chunksize` parts.
- `useragent`: the User-Agent of the driver's requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mirror.store.drivers.objsettings import GIB, MIB, Params, root_prefix

SECRET_KEYS = frozenset({"accesskey", "secretkey"})
KEYS = frozenset(
    {
        "region",
        "bucket",
        "regionendpoint",
        "forcepathstyle",
        "accesskey",
        "secretkey",
        "secure",
        "skipverify",
        "v4auth",
        "encrypt",
        "keyid",
        "chunksize",
        "multipartcopychunksize",
        "multipartcopymaxconcurrency",
        "multipartcopythresholdsize",
        "rootdirectory",
        "storageclass",
        "objectacl",
        "useragent",
    }
)
MIN_PART = 5 * MIB
MAX_PART = 5 * GIB
DEFAULT_PART = 10 * MIB
_CLASSES = ("STANDARD", "NONE")


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Validated `s3` parameters in the terms obstore needs.

    `endpoint` is None for AWS's own endpoint of `region`; otherwise it is the URL obstore
    sends requests to (with the bucket in the host name when `virtual_hosted`).
    """

    bucket: str
    region: str
    endpoint: str | None = None
    virtual_hosted: bool = True
    allow_http: bool = False
    skip_verify: bool = False
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    encryption: str | None = None
    kms_key_id: str | None = None
    part_size: int = DEFAULT_PART
    root: str = ""
    storage_class: str | None = "STANDARD"
    user_agent: str | None = None


def s3_settings(params: Mapping[str, object]) -> S3Settings:
    """Validate registry:2-style `s3` parameters; ValueError names the offending key."""
    p = Params("s3", params, KEYS)
    bucket = p.string("bucket", required=True)
    assert bucket is not None
    endpoint = p.string("regionendpoint")
    region = p.string("region", required=endpoint is None) or "us-east-1"
    secure = p.boolean("secure", True)
    path_style = p.boolean("forcepathstyle", False)
    url, allow_http = _endpoint(p, endpoint, region, bucket, secure=secure, path_style=path_style)

    access_key, secret_key = p.string("accesskey"), p.string("secretkey")
    if (access_key is None) != (secret_key is None):
        missing = "secretkey" if secret_key is None else "accesskey"
        raise p.error(missing, "is required when the other static credential is given")

    encrypt = p.boolean("encrypt", False)
    key_id = p.string("keyid")
    if key_id is not None and not encrypt:
        raise p.error("keyid", "needs encrypt: true (registry:2 would ignore the key)")
    encryption = ("aws:kms" if key_id else "AES256") if encrypt else None

    if not p.boolean("v4auth", True):
        raise p.error("v4auth", "false is not supported: obstore signs with Signature V4 only")
    p.refuse("objectacl", "obstore cannot send canned ACLs; only 'private'", unless="private")
    copy_why = (
        "obstore has no multipart copy; moves use one server-side copy up to 5 GiB and "
        "stream larger objects in chunksize parts"
    )
    for key in sorted(k for k in KEYS if k.startswith("multipartcopy")):
        p.refuse(key, copy_why)

    storage_class = (p.string("storageclass") or "STANDARD").upper()
    if storage_class not in _CLASSES:
        raise p.error(
            "storageclass",
            f"must be STANDARD or NONE, got {storage_class!r}: obstore cannot set a storage "
            "class on server-side copies, so moved objects would land in STANDARD "
            "(use a bucket lifecycle rule to transition objects instead)",
        )
    return S3Settings(
        bucket=bucket,
        region=region,
        endpoint=url,
        virtual_hosted=not path_style,
        allow_http=allow_http,
        skip_verify=p.boolean("skipverify", False),
        access_key=access_key,
        secret_key=secret_key,
        encryption=encryption,
        kms_key_id=key_id,
        part_size=p.integer("chunksize", DEFAULT_PART, MIN_PART, MAX_PART),
        root=root_prefix(p),
        storage_class=None if storage_class == "NONE" else storage_class,
        user_agent=p.string("useragent"),
    )


def _endpoint(
    p: Params,
    endpoint: str | None,
    region: str,
    bucket: str,
    *,
    secure: bool,
    path_style: bool,
) -> tuple[str | None, bool]:
    """(URL for obstore or None for AWS's default, whether plain HTTP is allowed)."""
    scheme = "https" if secure else "http"
    if endpoint is None:
        if secure:
            return None, False
        host = f"s3.{region}.amazonaws.com"
    else:
        parts = urlsplit(endpoint if "://" in endpoint else f"{scheme}://{endpoint}")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise p.error("regionendpoint", f"must be an http(s) URL or a host, got {endpoint!r}")
        if parts.path not in ("", "/") or parts.query:
            raise p.error("regionendpoint", f"must not have a path or query, got {endpoint!r}")
        scheme, host = parts.scheme, parts.netloc
    if not path_style:
        # Virtual-hosted style: obstore takes the endpoint as the bucket's own URL.
        host = f"{bucket}.{host}"
    return f"{scheme}://{host}", scheme == "http"
