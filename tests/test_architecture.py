"""The layer map of the package, enforced: imports point down only, and the library packages
never import Kedro, MLflow or the pipelines (README, "Architecture")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "contrastive_signals"

# package -> the project packages it may import (besides itself). Kedro-facing code
# (pipelines/, io/, hooks/, sweep/, settings.py, pipeline_registry.py, __main__.py) is not
# listed: it may import anything.
ALLOWED = {
    "config": set(),
    "signal": {"config"},
    "augment": {"config", "signal"},
    "data": {"config", "signal"},
    "losses": {"config"},
    "models": {"config", "losses", "signal"},
    "metrics": {"config", "signal", "models", "data"},
    "plots": {"config", "metrics"},
    "training": {"config", "models", "data"},
    "methods": {"config", "data", "losses", "models", "augment", "signal", "training", "metrics"},
    "inference": {"config", "data", "models", "signal", "metrics"},
}
FORBIDDEN_TOP_LEVEL = {"kedro", "kedro_datasets", "kedro_mlflow", "kedro_viz", "mlflow"}


def _package_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path`` (relative ones resolved
    against ``package``'s folder for files outside the tree)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside = path.is_relative_to(PACKAGE)
    folder = path.relative_to(PACKAGE).with_suffix("").parts[:-1] if inside else (package,)
    here = ["contrastive_signals", *folder]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                found.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
            else:
                found.append((node.lineno, node.module or ""))
    return found


LIBRARY_FILES = sorted(p for p in PACKAGE.rglob("*.py") if _package_of(p) in ALLOWED)


def test_every_library_package_is_in_the_layer_map():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert packages - {"pipelines", "io", "hooks", "sweep"} == set(ALLOWED) - {"config"}


def _problems(path: Path, package: str) -> list[str]:
    problems = []
    for line, module in _imports(path, package):
        top = module.split(".")[0]
        if top in FORBIDDEN_TOP_LEVEL:
            problems.append(f"line {line}: imports {module} (library code stays free of it)")
        if top == "contrastive_signals":
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else ""
            if target != package and target not in ALLOWED[package]:
                problems.append(f"line {line}: {package} may not import {module} "
                                f"(allowed: {sorted(ALLOWED[package])})")
    return problems


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_imports_point_down_and_skip_kedro_and_mlflow(path):
    problems = _problems(path, _package_of(path))
    assert not problems, "\n".join(problems)


def test_the_checker_catches_bad_imports(tmp_path):
    """The check can fail: an upward import, a relative one, and MLflow are all reported."""
    bad = tmp_path / "probe.py"
    bad.write_text("from contrastive_signals.methods.base import fit_method\nimport mlflow\n"
                   "from ..pipelines import common\nfrom .registry import build_model\n")
    problems = _problems(bad, "models")
    assert len(problems) == 3, problems
    assert "may not import contrastive_signals.methods.base" in problems[0]
    assert "imports mlflow" in problems[1]
    assert "contrastive_signals.pipelines" in problems[2]


def _lines(paths) -> int:
    return sum(len(p.read_text().splitlines()) for p in paths)


def test_pipelines_hold_under_15_percent_of_the_package():
    """Pipelines only wire (issue 13): recipes, losses and models live in the library."""
    share = _lines((PACKAGE / "pipelines").rglob("*.py")) / _lines(PACKAGE.rglob("*.py"))
    assert share < 0.15, f"pipelines/ holds {share:.1%} of the package's lines"
