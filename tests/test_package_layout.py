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


MAX_PARAMETERS = 6
"""What a run needs travels as one run object: no flow or pipeline function takes more."""


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """A function's parameter names, ``self`` and ``cls`` left out."""
    args = function.args
    names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return [name for name in names if name not in ("self", "cls")]


@pytest.mark.parametrize("part", ["flows", "pipeline"])
def test_no_flow_or_pipeline_function_takes_more_than_six_parameters(part: str) -> None:
    over = {
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}": len(parameters(node))
        for path in (PACKAGE / part).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and len(parameters(node)) > MAX_PARAMETERS
    }
    assert over == {}


def test_the_flows_are_declared_once() -> None:
    """Each Prefect flow but verify takes the run object and nothing else."""
    tree = ast.parse((PACKAGE / "flows" / "prefect_flows.py").read_text())
    flows = {node.name: parameters(node) for node in tree.body if isinstance(node, ast.FunctionDef)
             and any(ast.unparse(d).startswith("flow") for d in node.decorator_list)}  # fmt: skip
    assert {name: params for name, params in flows.items() if name != "verify_flow"} == {
        name: ["run"]
        for name in (
            "archive_flow",
            "ingest_flow",
            "compress_flow",
            "evaluate_flow",
            "restore_flow",
            "train_flow",
        )  # fmt: skip
    }
