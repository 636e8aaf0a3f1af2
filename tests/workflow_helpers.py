"""Run the workflow from a throw-away copy of the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "rules", "scripts", "config", "src", "report", "profiles", "envs", "slurm"]


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_symlink():  # ./slurm -> profiles/slurm stays a link, as in the repository
            (dest / name).symlink_to(src.readlink())
        elif src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def load_smoke() -> dict:
    return yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def snakemake(
    workdir: Path, *args: str, check: bool = True, cores: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *(["--cores", "2"] if cores else []), *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_jobs(output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", output):
        match = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block.strip())
        if not match:
            continue
        wildcards = {}
        found = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        if found:
            wildcards = dict(part.split("=", 1) for part in found.group(1).split(", "))
        jobs.append((match.group(1), wildcards))
    return jobs
