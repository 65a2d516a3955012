"""Platforms of an image index: `OS/ARCH[/VARIANT]` as `--platform` takes it, the
child an index has for one, and a child's platform as text."""

from __future__ import annotations

from mirror.client.errors import PlatformMissing
from mirror.types import Descriptor, Manifest


def parse_platform(text: str) -> tuple[str, str, str | None]:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise PlatformMissing(f"platform {text!r} is not OS/ARCH[/VARIANT]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def platform_text(platform: dict[str, object] | None) -> str:
    if not platform:
        return "unknown"
    parts = [str(platform.get("os", "?")), str(platform.get("architecture", "?"))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def pick_platform(index: Manifest, wanted: str) -> Descriptor:
    os_name, arch, variant = parse_platform(wanted)
    for child in index.manifests:
        p = child.platform or {}
        if p.get("os") != os_name or p.get("architecture") != arch:
            continue
        have = p.get("variant")
        if (
            variant is None
            or have == variant
            or (arch == "arm64" and {have, variant} <= {None, "v8"})
        ):
            return child
    offered = ", ".join(platform_text(c.platform) for c in index.manifests) or "none"
    raise PlatformMissing(f"the index has no {wanted} image (it has: {offered})")
