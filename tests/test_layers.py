"""The package's layers: no module imports from a layer above its own (see unetscape/__init__.py)."""

import ast
import shutil
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Each layer and the layers it may import besides itself. Layers of one rank (models, data)
# do not import each other.
BASICS = {"basics"}
ALLOWED = {
    "basics": BASICS,
    "models": BASICS,
    "data": BASICS,
    "training": BASICS | {"models", "data"},
    "landscape": BASICS | {"models", "data", "training"},
    "measures": BASICS | {"models", "data", "training", "landscape"},
    "analysis": BASICS | {"models", "data", "training", "landscape", "measures"},
    "plots": BASICS | {"models", "data", "training", "landscape", "measures", "analysis"},
    "workflow": BASICS | {"models", "data"},
    "jobs": BASICS | {"models", "data", "training", "landscape", "measures", "analysis", "plots", "workflow"},
}


def layer_of(module: str) -> str:
    """`unetscape.training.train` -> training; the top-level modules are the basics."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("atomic", "device", "run_ids", "seeding"):
        return "basics"
    if parts[1] not in ALLOWED:
        raise AssertionError(f"module {module} is in no layer: add its folder to the layer table")
    return parts[1]


def module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(src: Path, path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of the package in `path`, including those inside functions."""
    current = module_name(src, path)
    package = current if path.name == "__init__.py" else current.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.split(".")[0] == "unetscape"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "unetscape":
                continue
            # `from unetscape import device` imports the module unetscape.device
            found += [(node.lineno, f"{base}.{a.name}" if base == "unetscape" else base) for a in node.names]
    return found


def upward_imports(src: Path) -> list[str]:
    """Every import in the package under `src` that runs upward, as 'file:line: a -> b'."""
    bad = []
    for path in sorted((src / "unetscape").rglob("*.py")):
        here = layer_of(module_name(src, path))
        for line, target in imports_of(src, path):
            there = layer_of(target) if target != "unetscape.__version__" else "basics"
            if there != here and there not in ALLOWED[here]:
                bad.append(f"{path.relative_to(src)}:{line}: {here} imports {target} ({there})")
    return bad


def test_no_import_runs_upward():
    assert upward_imports(SRC) == []


def test_every_package_folder_is_a_layer_and_says_what_it_may_import():
    for folder in sorted(p for p in (SRC / "unetscape").iterdir() if (p / "__init__.py").is_file()):
        assert folder.name in ALLOWED, folder
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and "May import" in doc, folder


@pytest.mark.parametrize(
    "module, planted, expected",
    [
        ("training/outcomes.py", "from unetscape.analysis.statistics import mean_ci\n", "training imports"),
        ("models/losses.py", "from ..data import load_dataset\n", "models imports unetscape.data"),
        ("landscape/grid.py", "    from unetscape.jobs import measured\n", "landscape imports unetscape.jobs"),
        ("analysis/findings.py", "from unetscape.workflow.config import Run\n", "analysis imports"),
    ],
)
def test_a_planted_upward_import_is_found(tmp_path, module, planted, expected):
    shutil.copytree(SRC / "unetscape", tmp_path / "unetscape", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "unetscape" / module
    text = path.read_text()
    if planted.startswith("    "):  # inside a function, where lazy imports live
        text += "\n\ndef _planted():\n" + planted
    else:
        text += "\n" + planted
    path.write_text(text)
    bad = upward_imports(tmp_path)
    assert len(bad) == 1 and expected in bad[0] and module in bad[0], bad
