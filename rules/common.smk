from pathlib import Path

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


wildcard_constraints:
    arch="|".join(config["archs"]),
    optim="|".join(config["optimizers"]),
    noise=r"[0-9][0-9.e+-]*",
    seed=r"\d+",
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
    "tables": ["training_tables.py"],
    "figures": ["training_tables.py", "plots/style.py", "plots/training.py"],
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
        ]
    return outputs
