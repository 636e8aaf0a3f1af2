"""The conda environment of the rules and pyproject.toml name the same software."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# PyPI name -> conda-forge name where they differ
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
# Run by the main Snakemake process, not inside job environments.
WORKFLOW_ONLY = {"snakemake"}


def requirement_names(requirements):
    return {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def test_conda_environment_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {CONDA_NAMES.get(n, n) for n in requirement_names(project["dependencies"]) - WORKFLOW_ONLY}
    env = yaml.safe_load((REPO / "envs" / "unetscape.yaml").read_text())
    listed = requirement_names(d for d in env["dependencies"] if isinstance(d, str)) - {"python"}
    assert listed == wanted


def test_every_rule_uses_the_environment():
    for smk in (REPO / "rules").glob("*.smk"):
        text = smk.read_text()
        rules = len(re.findall(r"^(?:rule|checkpoint) \w+:", text, re.M))
        assert text.count('conda:\n        "../envs/unetscape.yaml"') == rules, smk.name
