"""Mutated containers of every codec through the code path ``restore`` uses.

Each stored object of a small real archive (image containers of every codec, and the
collection and shard models) is mutated with a fixed seed:

- as stored bytes (bit flips, truncations, bytes appended, header fields overwritten):
  the container's checksums must catch it, so each is either rejected with the
  project's own error (``ContainerError`` or ``CodecError``) or decodes to exactly the
  original picture: never a different picture, another exception, or a hang;
- inside a section, checksums recomputed (payload bit flips, truncations, codec header
  fields, swapped sections), as a writer with a bug would make it: rejected with the
  project's own error, or decoded to an image of the declared size; never another
  exception or a hang.

``FUZZ_CASES`` mutations per run; ``pytest --fuzz-long`` runs 100,000 and prints the
counts.
"""

from __future__ import annotations

import shutil
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentpress.codecs import CodecError
from latentpress.flows.compress import compress
from latentpress.flows.ingest import ingest
from latentpress.infra.container import Container, ContainerError, pack, unpack
from latentpress.pipeline.decode import StoredAt, decode_container, shared_model
from latentpress.run import Run

FUZZ_CASES = 3000
LONG_CASES = 100_000
SECONDS_PER_CASE = 20
CODECS = [
    "jpeg@50",
    "webp@40",
    "avif@30",
    "jxl@30",
    "latent-q@1",
    "vae@16",
    "glc:tiny@2",
    "relic:tiny@2",
    "laduree:tiny@108",
    "clric:fast@1",
]
OURS = (ContainerError, CodecError)


@pytest.fixture(scope="module")
def fuzz_archive(tmp_path_factory: pytest.TempPathFactory, kodak_crop: np.ndarray) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "photos").mkdir()
    Image.fromarray(kodak_crop[:40, :48]).save(root / "photos" / "a.png")
    Image.fromarray(kodak_crop[40:80, 48:96]).save(root / "photos" / "b.png")
    ingest(Run(str(root / "archive"), source=str(root / "photos")))
    result = compress(Run(str(root / "archive"), codecs=CODECS, train_steps=20))  # containers only: no metrics needed
    assert result.ok, result.errors
    return root / "archive"


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def hang(*_: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def stored_bytes(rng: np.random.Generator, data: bytes) -> bytes:
    """``data`` damaged as storage or transfer might damage it."""
    kind = rng.integers(4)
    if kind == 0:
        out = bytearray(data)
        for _ in range(rng.integers(1, 9)):
            out[rng.integers(len(out))] ^= 1 << int(rng.integers(8))
        return bytes(out)
    if kind == 1:
        return data[: rng.integers(len(data))]
    if kind == 2:
        return data + rng.bytes(int(rng.integers(1, 64)))
    at = int(rng.integers(min(len(data), 64)))  # the header: sizes, lengths, names
    return data[:at] + rng.bytes(int(rng.integers(1, 5))) + data[at + 4 :]


def inside_section(rng: np.random.Generator, data: bytes) -> bytes:
    """``data`` with one section changed (or two swapped) and valid checksums."""
    container = unpack(data)
    sections = dict(container.sections)
    names = sorted(sections)
    name = names[rng.integers(len(names))]
    body = bytearray(sections[name])
    kind = rng.integers(4)
    if kind == 0 and body:
        for _ in range(rng.integers(1, 5)):
            body[rng.integers(len(body))] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        body = body[: rng.integers(len(body) + 1)]
    elif kind == 2 and body:  # the codec's own header: shapes, sizes, versions
        at = int(rng.integers(min(len(body), 24)))
        body[at : at + 4] = rng.bytes(4)
    else:
        other = names[rng.integers(len(names))]
        body = bytearray(sections[other])
        sections[other] = sections[name]
    sections[name] = bytes(body)
    return pack(Container(container.kind, container.codec, container.codec_version, container.vae_id,
                          container.width, container.height, sections))  # fmt: skip


class Target:
    """One stored object of the archive and how to decode the image that depends on it."""

    def __init__(self, archive: Path, path: Path, image: Path) -> None:
        self.archive, self.path, self.image = archive, path, image
        self.original = path.read_bytes()
        self.key, self.image_id = image.parent.name, image.stem
        self.expected = self.decode()

    def decode(self) -> np.ndarray:
        if self.path != self.image:  # a model: read the (damaged) bytes, not the cached ones
            shared_model.cache_clear()
        data = self.image.read_bytes()
        return decode_container(data, "taesd", str(self.archive), StoredAt(str(self.image), self.image_id, self.key))[0]


def targets(archive: Path) -> list[Target]:
    out = []
    for image in sorted((archive / "images").glob("*/*.lpc")):
        out.append(Target(archive, image, image))
        codec = image.parent.name.split(".")[0]
        if codec == "laduree":
            out.append(Target(archive, next((archive / "shared").rglob("*.lpm")), image))
        elif codec in ("glc", "relic"):
            model = next(p for p in (archive / "models").rglob("*.lpm") if p.parts[-3].startswith(f"{codec}."))
            out.append(Target(archive, model, image))
    return out


def fuzz(archive: Path, cases: int, seed: int = 0) -> Counter:
    """Run ``cases`` mutations; return the count of each outcome (raises on a failure)."""
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    chosen = targets(archive)
    for case in range(cases):
        if case and case % 10_000 == 0:
            print(f"fuzz: {case} mutations: {dict(counts)}", flush=True)
        target = chosen[case % len(chosen)]
        repacked = rng.random() < 0.5
        mutation: Callable = inside_section if repacked else stored_bytes
        damaged = mutation(rng, target.original)
        target.path.write_bytes(damaged)
        try:
            with time_limit(SECONDS_PER_CASE):
                decoded = target.decode()
        except OURS:
            counts["rejected"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the failure this suite looks for
            raise AssertionError(
                f"case {case} ({target.path.name}, {mutation.__name__}): {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            target.path.write_bytes(target.original)
            if target.path != target.image:
                shared_model.cache_clear()
        if repacked:
            assert decoded.shape == target.expected.shape and decoded.dtype == np.uint8, case
            counts["decoded (valid container)"] += 1
        else:
            assert np.array_equal(decoded, target.expected), f"case {case}: silent corruption of {target.path}"
            counts["decoded unchanged"] += 1
    return counts


def test_mutated_containers_are_rejected_or_exact(
    fuzz_archive: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    archive_copy = Path(shutil.copytree(fuzz_archive, tmp_path / "archive"))
    cases = LONG_CASES if request.config.getoption("--fuzz-long") else FUZZ_CASES
    counts = fuzz(archive_copy, cases)
    print(f"\nfuzz: {cases} mutations: {dict(counts)}")
    assert sum(counts.values()) == cases and counts["rejected"] > cases // 4
