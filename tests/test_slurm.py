"""`snakemake --profile slurm` on a real one-node Slurm cluster (tests/slurm/cluster.sh).

The cluster test runs every kind of cluster job of the smoke config for one run (training, the
random plane with its line and surface, the training path, interpolations between seeds, the
curvature and flatness measures, in one job with the training path) through sbatch and checks the
results are bit-identical to the local smoke run. The whole smoke workflow through Slurm takes
several times longer on a small CI machine (every job pays for a Snakemake and a torch start
inside Slurm), for no rule it would add.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from workflow_helpers import REPO, copy_workflow, load_smoke, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.workflow

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
RUN = "improved/sgd/noise0/seed0"
TARGETS = [
    f"results/figures/landscape/{RUN}/surface.png",
    f"results/landscape/{RUN}/random/line.h5",
    f"results/landscape/{RUN}/interpolation_init.h5",
    f"results/landscape/{RUN}/pca/surface.h5",
    f"results/landscape/{RUN}/hessian.json",
    "results/landscape/improved/sgd/noise0/seeds0-1/interpolation.h5",
    f"results/landscape/{RUN}/flatness.json",
]
CLUSTER_RULES = {"train", "random_plane", "surface_chunk", "run_measures", "interpolate_seeds",
                 "connect_seeds", "edge_of_stability", "scale_invariance", "external_random_plane",
                 "external_run_measures"}
# What differs between the test cluster and a GPU cluster. The smoke config's device is cpu,
# so its jobs ask for no GPU; the profile's GPU settings are checked in test_profile_*.
TEST_OVERRIDES = [
    "--default-resources",
    "slurm_partition=debug",
    "runtime=30",
    "mem_mb=2000",
    "--slurm-status-command",
    "squeue",  # no accounting database behind sacct
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "1",
]


def test_profile_is_found_from_the_repository_root():
    assert (REPO / "slurm").is_symlink() and (REPO / "slurm").resolve() == (REPO / "profiles/slurm").resolve()
    profile = yaml.safe_load((REPO / "slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["rerun-incomplete"] and profile["keep-going"]
    assert {"slurm_partition", "runtime", "mem_mb"} <= set(profile["default-resources"])


def model_rules() -> set[str]:
    """The rules whose jobs load a model (they ask for GPU_JOB resources), read from rules/*.smk."""
    found = set()
    for smk in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=[ ]*(?:rule|checkpoint) \w+:)", smk.read_text()):
            name = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            if name and "**GPU_JOB" in block:
                found.add(name.group(1))
    return found


def test_profile_sizes_every_model_rule_and_names_no_other():
    """A renamed rule would silently fall back to the default 30 minutes and be killed on the cluster."""
    profile = yaml.safe_load((REPO / "slurm/config.yaml").read_text())
    sized = set(profile["set-resources"])
    assert model_rules() == CLUSTER_RULES
    assert sized == CLUSTER_RULES | {"prepare_dataset"}, sized ^ (CLUSTER_RULES | {"prepare_dataset"})


def test_profile_gpu_requests(tmp_path):
    """Model rules ask for one GPU of the profile's kind when the device may be CUDA; others for none."""
    workdir = copy_workflow(tmp_path)
    config = load_smoke()
    config["device"] = "auto"
    path = write_config(workdir / "gpu.yaml", config)
    # Only the plan: the local executor stands in for Slurm, the profile is the real one.
    args = ["--profile", "slurm", "--executor", "local", "-n", *TARGETS, "--configfile", str(path)]
    gres = ["--config", "gpu_model=h100", "gpu_request=gres"]
    for extra, wanted in (["--config", "gpu_model=a100"], "gpu=1, gpu_model=a100"), (gres, "gres=gpu:h100:1"):
        out = snakemake(workdir, *args[:4], "--cores", "1", *args[4:], *extra, cores=False).stdout
        jobs = {rule for rule, _ in planned_jobs(out)}
        assert {"train", "random_plane", "run_measures", "interpolate_seeds"} <= jobs
        for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", out):
            match = re.match(r"(local)?(?:rule|checkpoint) (\w+):", block.strip())
            if not match:
                continue
            rule = match.group(2)
            resources = re.search(r"resources: (.*)", block).group(1)
            if rule in CLUSTER_RULES:
                assert wanted in resources, (rule, resources)
                assert "slurm_partition=gpu" in resources
            else:
                assert "gpu=1" not in resources and "gres" not in resources, (rule, resources)


@pytest.fixture(scope="session")
def slurm_cluster():
    """SLURM_CONF of a running one-node cluster: reused if up, else started and later stopped."""
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        if os.geteuid() != 0:
            pytest.skip("Slurm is not installed and installing it needs root")
        if shutil.which("apt-get") is None:
            pytest.skip("Slurm is not installed and there is no apt-get to install it")
    if os.geteuid() != 0:
        pytest.skip("starting the Slurm daemons (tests/slurm/cluster.sh) needs root")
    running = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True).returncode == 0
    proc = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"tests/slurm/cluster.sh start failed:\n{proc.stdout}\n{proc.stderr}"
    yield proc.stdout.strip().splitlines()[-1]
    if not running:
        subprocess.run(["bash", str(CLUSTER), "stop"], check=True, timeout=120)


def h5_contents(path: Path, root: Path) -> dict:
    """Every dataset's bytes and every attribute, with the run's own directory taken out."""
    contents = {}

    def visit(name, obj):
        for key, value in obj.attrs.items():
            value = value.decode() if isinstance(value, bytes) else value
            contents[f"{name}@{key}"] = value.replace(str(root), "<root>") if isinstance(value, str) else repr(value)
        if isinstance(obj, h5py.Dataset):
            data = obj[()]
            if isinstance(data, bytes):  # a string dataset, e.g. dir_file
                contents[name] = data.decode().replace(str(root), "<root>")
            else:
                contents[name] = (str(data.dtype), np.shape(data), np.asarray(data).tobytes())

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return contents


def test_smoke_targets_through_slurm_match_the_local_run(slurm_cluster, smoke_run, tmp_path):
    local_dir, _ = smoke_run
    workdir = copy_workflow(tmp_path)
    config = write_config(workdir / "smoke.yaml", load_smoke())
    env = {**os.environ, "SLURM_CONF": slurm_cluster}
    # Targets before --configfile, which takes every following word as a file.
    proc = subprocess.run(
        ["timeout", "-k", "15", "600", "snakemake", "--profile", "slurm", *TARGETS, *TEST_OVERRIDES,
         "--configfile", str(config)],
        cwd=workdir, capture_output=True, text=True, env=env, timeout=700,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log

    # Every job that is not a localrule went through sbatch, and Slurm says it completed.
    remote = [rule for rule, _ in planned_jobs(log) if not re.search(rf"^localrule {rule}:", log, re.M)]
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == len(set(submitted)) == log.count("\nrule ") > 0, log
    assert {"prepare_dataset", "train", "random_plane", "run_measures", "interpolate_seeds"} <= set(remote)
    assert re.search(r"^localrule run_figures:", log, re.M)
    states = slurm_job_states(env)
    assert all(states.get(job) == "COMPLETED" for job in submitted), {job: states.get(job) for job in submitted}

    for target in TARGETS:
        assert (workdir / target).stat().st_size > 0, target
    for name in TARGETS[1:4] + [f"results/landscape/{RUN}/random/surface.h5", TARGETS[5]]:
        assert h5_contents(workdir / name, workdir) == h5_contents(local_dir / name, local_dir), name
    for name in (TARGETS[4], TARGETS[6]):
        numbers = [json.loads((d / name).read_text().replace(str(d), "<root>")) for d in (workdir, local_dir)]
        assert numbers[0] == numbers[1], name
    for run in ("seed0", "seed1"):
        checkpoints = f"results/runs/improved/sgd/noise0/{run}/checkpoints"
        for ckpt in sorted((local_dir / checkpoints).glob("*.pt")):
            assert (workdir / checkpoints / ckpt.name).read_bytes() == ckpt.read_bytes(), ckpt.name


def slurm_job_states(env: dict) -> dict[str, str]:
    """Job id -> state, from the cluster's job completion log and, for recent jobs, squeue."""
    states = {}
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, env=env).stdout
    found = re.search(r"^JobCompLoc\s*=\s*(\S+)", config, re.M)
    if found and Path(found.group(1)).exists():
        for line in Path(found.group(1)).read_text().splitlines():
            match = re.search(r"JobId=(\d+) .*JobState=(\w+)", line)
            if match:
                states[match.group(1)] = match.group(2)
    queue = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %T"], capture_output=True, text=True, env=env)
    for line in queue.stdout.splitlines():
        job, state = line.split()
        states.setdefault(job, state)
    return states
