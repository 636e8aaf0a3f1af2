import sys
from pathlib import Path

# The workflow runs the package of its own checkout (see unetscape/source_tree.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from unetscape.source_tree import use_source_tree

use_source_tree(Path(workflow.basedir) / "src")

from unetscape.cluster import gpu_resources
from unetscape.config import (
    ConfigError,
    all_runs,
    arch_spec,
    find_run,
    study_runs,
    train_settings,
    validate_config,
)

try:
    validate_config(config, Path(workflow.basedir) / "config/schema/config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None


STUDIES = list(config["studies"])
DATASET = config["data"]["name"]
RUN_DIR = "results/runs/{arch}/{optim}/noise{noise}/seed{seed}"
RUN_LOG = "{arch}/{optim}/noise{noise}/seed{seed}"
LANDSCAPE_DIR = "results/landscape/{arch}/{optim}/noise{noise}/seed{seed}"
# The same pattern with its wildcards escaped, for gather.NAME(), which formats its argument.
LANDSCAPE_DIR_ESC = LANDSCAPE_DIR.replace("{", "{{").replace("}", "}}")
# Resources of the jobs that run models: one GPU when the config's device may be one, of
# the kind the Slurm profile names (see unetscape/cluster.py).
GPU_JOB = gpu_resources(config)


wildcard_constraints:
    arch="|".join(config["archs"]),
    optim="|".join(config["optimizers"]),
    noise=r"[0-9][0-9.e+-]*",
    seed=r"\d+",
    seed_b=r"\d+",
    scatteritem=r"\d+-of-\d+",
    study="|".join(STUDIES),
    dataset=DATASET,


# The package modules each rule runs. Declared as inputs, an edit to one of them re-runs
# exactly the jobs that use it (Snakemake's code trigger only sees the script itself).
PACKAGE = Path(workflow.basedir) / "src" / "unetscape"

CODE = {
    "data": [
        "atomic.py",
        "data/store.py",
        "data/synthetic.py",
        "data/isic.py",
        "data/prepare.py",
    ],
    "train": [
        "atomic.py",
        "data/store.py",
        "models.py",
        "losses.py",
        "evaluation.py",
        "seeding.py",
        "device.py",
        "training.py",
    ],
    "landscape": [
        "atomic.py",
        "data/store.py",
        "models.py",
        "losses.py",
        "evaluation.py",
        "device.py",
        "landscape/directions.py",
        "landscape/grid.py",
        "landscape/surface.py",
        "landscape/surface_io.py",
        "landscape/interpolation.py",
        "landscape/trajectory.py",
        "landscape/jobs.py",
    ],
    "tables": ["training_tables.py"],
    "figures": ["training_tables.py", "plots/style.py", "plots/training.py"],
    "hessian": [
        "atomic.py",
        "data/store.py",
        "models.py",
        "losses.py",
        "evaluation.py",
        "device.py",
        "curvature.py",
        "landscape/surface.py",
        "landscape/jobs.py",
    ],
    "metrics": [
        "atomic.py",
        "training_tables.py",
        "landscape/surface_io.py",
        "landscape_metrics.py",
        "statistics.py",
        "landscape_tables.py",
    ],
    "merge": ["atomic.py", "landscape/grid.py", "landscape/surface_io.py"],
    "landscape_figures": [
        "plots/style.py",
        "plots/landscape.py",
        "plots/metrics.py",
        "landscape/surface_io.py",
    ],
}


def code(stage):
    return [str(PACKAGE / name) for name in CODE[stage]]


def get_dataset():
    return f"results/data/{DATASET}.npz"


def run_path(run, name):
    return f"results/runs/{run.id}/{name}"


def get_train_settings(wildcards):
    try:
        run = find_run(config, **wildcards)
    except ConfigError as err:
        raise WorkflowError(str(err)) from None
    return train_settings(config, run)


def get_run_id(wildcards):
    return find_run(config, **wildcards).id


def get_run_noise(wildcards):
    return float(wildcards.noise)


def run_landscape(run, name):
    return f"results/landscape/{run.id}/{name}"


def seed_pairs(study):
    """Consecutive seed pairs (a, b) of every condition of a study: final A -> final B."""
    seeds = sorted(config["studies"][study]["seeds"])
    runs = [run for run in study_runs(config, study) if run.seed in seeds[:-1]]
    return [(run, seeds[seeds.index(run.seed) + 1]) for run in runs]


def pair_path(run, seed_b):
    w = run.wildcards
    return (
        f"results/landscape/{w['arch']}/{w['optim']}/noise{w['noise']}/"
        f"seeds{w['seed']}-{seed_b}/interpolation.h5"
    )


def get_study_surfaces(wildcards):
    return [
        run_landscape(run, "random/surface.h5")
        for run in study_runs(config, wildcards.study)
    ]


def get_study_interpolations(wildcards):
    return {
        "init": [
            run_landscape(run, "interpolation_init.h5")
            for run in study_runs(config, wildcards.study)
        ],
        "pairs": [pair_path(run, b) for run, b in seed_pairs(wildcards.study)],
    }


def get_study_pair_labels(wildcards):
    return [f"{run.id} -> seed{b}" for run, b in seed_pairs(wildcards.study)]


def get_study_lines(wildcards):
    return [
        run_landscape(run, "random/line.h5")
        for run in study_runs(config, wildcards.study)
    ]


def get_study_hessians(wildcards):
    return [
        run_landscape(run, "hessian.json")
        for run in study_runs(config, wildcards.study)
    ]


def get_scale_invariance_checkpoints(wildcards):
    return [
        f"results/runs/{run}/checkpoints" for run in config["scale_invariance"]["runs"]
    ]


def get_study_histories(wildcards):
    return [run_path(run, "history.csv") for run in study_runs(config, wildcards.study)]


def get_study_runs(wildcards):
    return [run.id for run in study_runs(config, wildcards.study)]


def get_study_params(wildcards):
    spec = config["studies"][wildcards.study]
    return {
        "study": wildcards.study,
        "title": spec.get("title", wildcards.study),
        "runs": get_study_runs(wildcards),
        "archs": {name: arch_spec(config, name) for name in spec["archs"]},
    }


def get_final_outputs():
    outputs = [get_dataset()]
    for study in STUDIES:
        outputs += [
            f"results/tables/training_{study}.csv",
            f"results/figures/{study}.png",
            f"results/figures/{study}.pdf",
            f"results/figures/{study}_landscape.png",
            f"results/figures/{study}_interpolation.png",
            f"results/figures/{study}_metrics.png",
            f"results/tables/conditions_{study}.csv",
        ]
    outputs.append("results/figures/scale_invariance.png")
    for run in all_runs(config):
        outputs += [
            f"results/figures/landscape/{run.id}/{name}.png"
            for name in ("surface", "lines", "trajectory")
        ]
    for run in all_runs(config):
        outputs += [
            f"results/figures/landscape/{run.id}/explore.html",
            run_landscape(run, "random/surface.vts"),
            run_landscape(run, "pca/surface.vts"),
        ]
    return outputs
