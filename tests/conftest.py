"""Shared fixtures: configuration for offline models, small real and synthetic images."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Tests and CI load pretrained weights from the shared models folder, through the
# same configuration a user sets.
os.environ.setdefault("LATENTPRESS_MODELS", str(SHARED / "models"))
os.environ.setdefault("LATENTPRESS_DEVICE", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Parallel test processes (pytest-xdist, as scripts/test.sh runs them): one torch thread
# each, since two processes of two threads on two cores run several times slower than
# one alone, and a Prefect home (its SQLite database) each for their Prefect servers.
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"latentpress-prefect-{worker}-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)

KODAK = SHARED / "data" / "kodak-dev"

pytest_plugins = ["s3fixture", "pipeline_fixtures", "latent_fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-long", action="store_true", help="run 100,000 container mutations (tests/test_fuzz.py)")


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    """Folder of the six real Kodak development photos."""
    assert KODAK.is_dir(), f"missing real test photos at {KODAK}"
    return KODAK


@pytest.fixture(scope="session")
def kodak_crop() -> np.ndarray:
    """A 128x96 crop of a real photo (kodim03), (H, W, 3) uint8."""
    from PIL import Image

    with Image.open(KODAK / "kodim03.png") as img:
        return np.asarray(img.convert("RGB"))[200:296, 300:428].copy()


@pytest.fixture
def smooth_image() -> np.ndarray:
    """A deterministic 61x75 synthetic image with edges and gradients (odd sizes)."""
    h, w = 61, 75
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 127 + 120 * np.sin(x / 9.0)
    g = 127 + 120 * np.cos(y / 7.0)
    b = np.where((x - 37) ** 2 + (y - 30) ** 2 < 300, 230.0, 30.0)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)
