"""Make every job of the workflow import this package from the checkout that runs it."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def use_source_tree(src_dir: str | os.PathLike) -> None:
    """Put `src_dir` first on the import path of this process and of every job it starts.

    Job processes (local, Slurm, or in a conda environment that lacks the package) inherit
    PYTHONPATH, so they run exactly the code the rules declare as inputs, not some other
    installed version.
    """
    src_dir = str(Path(src_dir).resolve())
    if sys.path[:1] != [src_dir]:
        sys.path.insert(0, src_dir)
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src_dir]
    os.environ["PYTHONPATH"] = os.pathsep.join([src_dir, *inherited])
