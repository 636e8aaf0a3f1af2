"""Fixtures shared by the workflow tests."""

import pytest
from workflow_helpers import copy_workflow, load_smoke, snakemake, write_config


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The smoke workflow run locally once (`--cores 2`): (workdir, config path).

    Session-wide so the Slurm test compares against the same results instead of running the
    whole workflow locally again.
    """
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    config = write_config(workdir / "smoke.yaml", load_smoke())
    snakemake(workdir, "--configfile", str(config))
    return workdir, config


@pytest.fixture(scope="session")
def smoke_report(smoke_run):
    """`snakemake --report` of the smoke run, built once: its path."""
    workdir, config = smoke_run
    snakemake(workdir, "--configfile", str(config), "--report", "results/report.html")
    return workdir / "results/report.html"
