"""Workload 17: `mirror copy` registry to registry against `skopeo copy --all`.

Source: the run's upstream (docker-registry); destination: the standalone reference
docker-registry. Two images: the 5-layer image, and a two-platform OCI index of five
layers per platform (10 layers). Every round builds and seeds images of its own and each
tool copies them to a repository of its own, so neither finds a blob it (or the other)
already put in the destination repository. Both run as processes from the command
line, start-up included; the order of the two swaps every round.

mirror's own modules are byte-compiled first, as `pip install` leaves them: run from a
checkout under PYTHONDONTWRITEBYTECODE (as here), every `python -m mirror` would
otherwise compile its ~40 modules from source again, a start-up no install has.
"""

from __future__ import annotations

import compileall
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mirror
from bench.env import Env, Server
from bench.results import Row, Samples, at_most
from bench.settings import human_size
from tests.support import skopeo
from tests.support.images import BuiltImage, build_image, build_index

NUMBER = 17
TOOLS = ("mirror", "skopeo")


def mirror_copy(source: str, destination: str, timeout: float) -> None:
    command = [sys.executable, "-m", "mirror", "copy", "--insecure", "-q", source, destination]
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mirror copy failed: {done.stderr.strip()}")


def skopeo_copy(source: str, destination: str, timeout: float) -> None:
    skopeo.copy(source, destination, all_images=True, timeout=timeout)


COPIERS: dict[str, Callable[[str, str, float], None]] = {
    "mirror": mirror_copy,
    "skopeo": skopeo_copy,
}


def _seed(env: Env, image: BuiltImage, repository: str) -> str:
    source = env.upstream.ref(repository)
    skopeo.copy(image.source_ref, source, all_images=True, timeout=env.scale.timeout)
    return source


def _timed(env: Env, target: Server, source: str, name: str, round_number: int) -> Samples:
    samples = Samples()
    order = TOOLS if round_number % 2 == 0 else tuple(reversed(TOOLS))
    for tool in order:
        destination = target.ref(f"copy-{tool}/{name}-{round_number}")
        started = time.perf_counter()
        COPIERS[tool](source, destination, env.scale.timeout)
        samples.add("mirror" if tool == "mirror" else "reference", time.perf_counter() - started)
    return samples


def compile_mirror() -> None:
    """Write the bytecode of the mirror package (py_compile writes it even where the
    interpreter itself would not); quiet, and nothing to do when it is current."""
    compileall.compile_dir(Path(mirror.__file__).parent, quiet=1)


def copy_registry_to_registry(env: Env) -> list[Row]:
    compile_mirror()
    layers = env.scale.five_layers
    target = env.standalone("reference")
    five, index = Samples(), Samples()
    for round_number in range(env.scale.rounds):
        images = env.workdir / "images" / f"copy-{round_number}"
        single = build_image(images / "five", layers=list(layers), seed=f"copy5-{round_number}")
        multi = build_index(images / "index", layers=list(layers), seed=f"copyix-{round_number}")
        for samples, image, name in ((five, single, "five"), (index, multi, "index")):
            source = _seed(env, image, f"copy/{name}-{round_number}")
            measured = _timed(env, target, source, name, round_number)
            samples.mirror.extend(measured.mirror)
            samples.reference.extend(measured.reference)
    env.note(f"17 copy of the 5-layer image s: {five.describe()} (reference column: skopeo)")
    env.note(f"17 copy of the 10-layer index s: {index.describe()} (reference column: skopeo)")
    size = human_size(env.scale.five_size)
    metric = "time (s), reference column: skopeo copy --all"
    return [
        Row(
            NUMBER,
            f"mirror copy registry to registry, 5-layer {size} image",
            metric,
            *five.medians(),
            at_most(1.0),
        ),
        Row(
            NUMBER,
            f"mirror copy registry to registry, 10-layer 2-platform index ({size} per platform)",
            metric,
            *index.medians(),
            at_most(1.0),
        ),
    ]
