"""The package's dependency rules, read from the source: what each part may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "latentpress"


def imported_modules(folder: Path) -> set[str]:
    """Every ``latentpress`` name the Python files under ``folder`` import, in full
    (``from a.b import c`` gives ``a.b.c``)."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("latentpress")}


@pytest.mark.parametrize(("codec", "other"), [("glc", "relic"), ("relic", "glc")])
def test_glc_and_relic_import_nothing_from_each_other(codec: str, other: str) -> None:
    imports = imported_modules(PACKAGE / "codecs" / codec)
    assert not {m for m in imports if m.startswith(f"latentpress.codecs.{other}")}
    assert any(m.startswith("latentpress.codecs.hyperprior") for m in imports)


def test_the_hyperprior_package_depends_on_no_codec() -> None:
    """Only on itself, the codec contract, the range coder and the pretrained networks
    (the latent distance a training loss may add)."""
    imports = imported_modules(PACKAGE / "codecs" / "hyperprior")
    allowed = ("latentpress.codecs.hyperprior", "latentpress.codecs.base", "latentpress.codecs.entropy",
               "latentpress.models.")  # fmt: skip
    assert {m for m in imports if not m.startswith(allowed)} == set()
