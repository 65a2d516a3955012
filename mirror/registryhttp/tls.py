"""The TLS trust of one upstream: a private CA, a client certificate, or no verification.

`client_tls(...)` is what `DistributionClient(tls=...)` takes: `True` (httpx's default:
the public CAs of certifi, verified) when nothing is configured, else an
`ssl.SSLContext`. Files are read once, when the client is built; an unreadable or
invalid file is a ValueError naming it.
"""

from __future__ import annotations

import ssl

import certifi


def client_tls(
    *, ca: str = "", certificate: str = "", key: str = "", insecure: bool = False
) -> ssl.SSLContext | bool:
    if not (ca or certificate or insecure):
        return True
    try:
        context = ssl.create_default_context(cafile=ca or certifi.where())
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"CA bundle {ca}: {exc}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if certificate:
        try:
            context.load_cert_chain(certificate, key or None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"client certificate {certificate}: {exc}") from None
    return context
