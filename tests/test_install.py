"""What the quick start's `pip install -e .` installs is enough for everything the README invites."""

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import snakemake
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def installed_by_the_project() -> set[str]:
    """Distributions pip installs for the project's dependencies, one level into Snakemake."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    names = {canonicalize_name(r.name) for r in requirements}
    extras = next(r.extras for r in requirements if r.name == "snakemake")
    for r in map(Requirement, importlib.metadata.requires("snakemake")):
        if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ["", *extras]):
            names.add(canonicalize_name(r.name))
    return names


def test_report_needs_nothing_beyond_the_install():
    # `snakemake --report` imports these lazily and fails late ("Python package pygments must
    # be installed to create reports") when one is missing.
    reporter = Path(snakemake.__file__).parent / "report"
    modules = set()
    for source in reporter.rglob("*.py"):
        modules |= set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", source.read_text(), re.M))
    modules -= set(sys.stdlib_module_names) | {"snakemake"}
    assert "pygments" in modules  # the scan sees the reporter's lazy imports
    distributions = importlib.metadata.packages_distributions()
    installed = installed_by_the_project()
    missing = [
        m for m in sorted(modules)
        if not any(canonicalize_name(d) in installed for d in distributions.get(m, [m]))
    ]
    assert not missing, f"snakemake --report imports {missing}, which `pip install -e .` does not install"
