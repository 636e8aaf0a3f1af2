"""Which package files a rule's script runs: its imports, followed through the package.

Snakemake's code trigger sees only a rule's own script. Declared as inputs, the package modules
a script imports make an edit to any of them re-run exactly the jobs that use it; derived from
the source, the list cannot go stale when a module gains an import.

The walk is static (`ast`): every `import unetscape...` and `from ... import ...` anywhere in a
module, including imports inside functions, counts. Importing a submodule runs every parent
package's `__init__.py`, so those count too; a name taken from a package resolves to its
submodule when there is one, or, for packages that resolve names lazily, through the package's
literal `_SOURCES = {name: submodule}` table.
"""

from __future__ import annotations

import ast
import os
from functools import lru_cache
from pathlib import Path

PACKAGE = "unetscape"


def _module_file(src: Path, name: str) -> Path | None:
    """The file of dotted module `name` under `src`, or None if it is not part of `src`."""
    base = src.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _module_name(src: Path, path: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _lazy_sources(src: Path, package: str) -> dict:
    """The literal `_SOURCES` table of a package's `__init__.py` (name -> submodule), if any."""
    init = _module_file(src, package)
    if init is None or init.name != "__init__.py":
        return {}
    for node in ast.walk(ast.parse(init.read_text(), str(init))):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_SOURCES" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _imported_modules(src: Path, path: Path) -> set[str]:
    """Dotted names of the package modules that the file `path` imports directly."""
    current = _module_name(src, path) if path.is_relative_to(src) else ""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = current.split(".") if is_package else current.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            lazy = _lazy_sources(src, base)
            for alias in node.names:
                if _module_file(src, f"{base}.{alias.name}") is not None:
                    found.add(f"{base}.{alias.name}")
                elif alias.name in lazy:
                    found.add(f"{base}.{lazy[alias.name]}")
    return found


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: k + 1]) for k in range(len(parts))]


@lru_cache(maxsize=None)
def _closure(src: Path, script: Path) -> tuple[Path, ...]:
    seen: set[str] = set()
    todo = sorted(_imported_modules(src, script))
    while todo:
        name = todo.pop()
        for module in _with_parents(name):
            if module in seen:
                continue
            path = _module_file(src, module)
            if path is None:
                raise ValueError(f"{script} imports {module}, which is not a module under {src}")
            seen.add(module)
            todo.extend(sorted(_imported_modules(src, path) - seen))
    return tuple(sorted(_module_file(src, m) for m in seen))


def script_modules(script: str | os.PathLike, src: str | os.PathLike) -> list[Path]:
    """Every file of the package under `src` that running `script` imports, sorted (absolute)."""
    return list(_closure(Path(src).resolve(), Path(script).resolve()))


def code_inputs(script: str | os.PathLike, src: str | os.PathLike, start: str | os.PathLike | None = None) -> list[str]:
    """`script_modules` as paths relative to `start` (default: the working directory), so the
    inputs of a job stay the same when the whole project folder moves."""
    start = os.getcwd() if start is None else start
    return [os.path.relpath(path, start) for path in script_modules(script, src)]
