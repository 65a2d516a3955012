"""`mirror ls`, `catalog`, `inspect`, `digest`, `tag` and `delete`: one registry, one
request or a few (crane's verbs of the same names)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mirror.client.errors import ReferenceInvalid
from mirror.client.platforms import platform_text
from mirror.client.refs import ImageRef, validate_host
from mirror.client.registry import Registry, RemoteManifest
from mirror.commands.clientcli import Registries, common_flags, credentials, emit, run
from mirror.errors import ManifestInvalid, TagInvalid, Unsupported

MAX_CONFIG = 8 << 20


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ls = commands.add_parser("ls", help="list the tags of a repository (HOST/REPO)")
    ls.add_argument("repository", metavar="HOST/REPO")
    catalog = commands.add_parser("catalog", help="list the repositories of a registry")
    catalog.add_argument("host", metavar="HOST")
    inspect = commands.add_parser("inspect", help="show an image's manifest, config and platforms")
    inspect.add_argument("reference", metavar="REF")
    inspect.add_argument("--raw", action="store_true", help="print the manifest's exact bytes")
    digest = commands.add_parser("digest", help="print the digest of an image")
    digest.add_argument("reference", metavar="REF")
    tag = commands.add_parser("tag", help="give an image another tag in its repository")
    tag.add_argument("reference", metavar="REF")
    tag.add_argument("new_tag", metavar="NEWTAG")
    delete = commands.add_parser(
        "delete", help="delete a manifest (by tag or digest; every tag on it goes)"
    )
    delete.add_argument("reference", metavar="REF")
    for parser in (ls, catalog, inspect, digest, tag, delete):
        common_flags(parser)


def run_verb(args: argparse.Namespace) -> int:
    work = VERBS[args.command]
    return run(args.command, lambda registries: work(registries, args), args.insecure)


def _registry(registries: Registries, args: argparse.Namespace, ref: ImageRef) -> Registry:
    return registries.get(ref.api_host, credentials(args.creds))


async def _ls(registries: Registries, args: argparse.Namespace) -> int:
    ref = ImageRef.parse(args.repository, default_tag=None)
    if ref.tag is not None or ref.digest is not None:
        raise ReferenceInvalid(f"{args.repository!r}: give a repository, without tag or digest")
    tags = await _registry(registries, args, ref).tags(ref.repository)
    emit(args, {"repository": f"{ref.host}/{ref.repository}", "tags": tags}, "\n".join(tags))
    return 0


async def _catalog(registries: Registries, args: argparse.Namespace) -> int:
    host = validate_host(args.host.removeprefix("docker://").rstrip("/"))
    names = await registries.get(host, credentials(args.creds)).catalog()
    emit(args, {"registry": host, "repositories": names}, "\n".join(names))
    return 0


async def _inspect(registries: Registries, args: argparse.Namespace) -> int:
    ref = ImageRef.parse(args.reference)
    registry = _registry(registries, args, ref)
    fetched = await registry.get_manifest(ref.repository, ref.reference)
    if args.raw:
        sys.stdout.buffer.write(fetched.raw)
        sys.stdout.flush()
        return 0
    doc = await _inspection(registry, ref, fetched)
    emit(args, doc, _inspection_text(doc))
    return 0


async def _inspection(registry: Registry, ref: ImageRef, fetched: RemoteManifest) -> dict[str, Any]:
    try:
        parsed = fetched.parsed()
    except (ManifestInvalid, Unsupported) as exc:
        raise ReferenceInvalid(f"{ref}: {exc.message}") from None
    doc: dict[str, Any] = {
        "name": f"{ref.host}/{ref.repository}",
        "reference": ref.reference,
        "digest": str(fetched.digest),
        "mediaType": fetched.media_type,
        "size": len(fetched.raw),
        "manifest": json.loads(fetched.raw),
        "config": None,
        "platforms": [],
        "layers": [],
    }
    if parsed.is_index:
        doc["platforms"] = [
            {
                "platform": platform_text(child.platform),
                "digest": str(child.digest),
                "mediaType": child.media_type,
                "size": child.size,
            }
            for child in parsed.manifests
        ]
        return doc
    doc["layers"] = [
        {"digest": str(layer.digest), "mediaType": layer.media_type, "size": layer.size}
        for layer in parsed.layers
    ]
    if parsed.config is not None and parsed.config.size <= MAX_CONFIG:
        raw = await registry.get_blob(ref.repository, parsed.config.digest, MAX_CONFIG)
        try:
            config = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            config = None
        doc["config"] = config
        if isinstance(config, dict) and config.get("os"):
            doc["platforms"] = [{"platform": platform_text(config), "digest": str(fetched.digest)}]
    return doc


def _inspection_text(doc: dict[str, Any]) -> str:
    lines = [
        f"Name:       {doc['name']}",
        f"Digest:     {doc['digest']}",
        f"MediaType:  {doc['mediaType']}",
        f"Size:       {doc['size']}",
    ]
    for item in doc["platforms"]:
        lines.append(f"Platform:   {item['platform']}  {item['digest']}")
    config = doc["config"]
    if isinstance(config, dict):
        if config.get("created"):
            lines.append(f"Created:    {config['created']}")
        settings = config.get("config") or {}
        if isinstance(settings, dict):
            for key in ("Entrypoint", "Cmd", "WorkingDir", "User"):
                if settings.get(key):
                    lines.append(f"{key + ':':<11} {json.dumps(settings[key])}")
    if doc["layers"]:
        total = sum(layer["size"] for layer in doc["layers"])
        lines.append(f"Layers:     {len(doc['layers'])} ({total} bytes)")
        lines.extend(f"  {layer['digest']}  {layer['size']}" for layer in doc["layers"])
    return "\n".join(lines)


async def _digest(registries: Registries, args: argparse.Namespace) -> int:
    ref = ImageRef.parse(args.reference)
    registry = _registry(registries, args, ref)
    digest = await registry.resolve(ref.repository, ref.reference)
    emit(args, {"name": str(ref), "digest": str(digest)}, str(digest))
    return 0


async def _tag(registries: Registries, args: argparse.Namespace) -> int:
    ref = ImageRef.parse(args.reference)
    try:
        target = ref.with_tag(args.new_tag)
    except TagInvalid as exc:
        raise ReferenceInvalid(exc.message) from None
    registry = _registry(registries, args, ref)
    fetched = await registry.get_manifest(ref.repository, ref.reference)
    await registry.put_manifest(ref.repository, args.new_tag, fetched.raw, fetched.media_type)
    emit(
        args,
        {"name": str(target), "digest": str(fetched.digest)},
        f"{target}: {fetched.digest}",
    )
    return 0


async def _delete(registries: Registries, args: argparse.Namespace) -> int:
    ref = ImageRef.parse(args.reference)
    registry = _registry(registries, args, ref)
    digest = ref.digest or await registry.resolve(ref.repository, ref.reference)
    await registry.delete_manifest(ref.repository, digest)
    deleted = ref.with_digest(digest)
    emit(args, {"deleted": str(deleted)}, f"deleted {deleted}")
    return 0


VERBS = {
    "ls": _ls,
    "catalog": _catalog,
    "inspect": _inspect,
    "digest": _digest,
    "tag": _tag,
    "delete": _delete,
}
