import os
import sys
from pathlib import Path

# The workflow runs the package of its own checkout (see unetscape/workflow/source_tree.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from unetscape.workflow.source_tree import use_source_tree

use_source_tree(Path(workflow.basedir) / "src")

from unetscape.workflow.cluster import gpu_resources
from unetscape.workflow.code_inputs import code_inputs
from unetscape.workflow.config import (
    ConfigError,
    all_runs,
    arch_spec,
    canonical,
    evaluation_params,
    find_run,
    first_seed_runs,
    landscape_runs,
    study_has_landscapes,
    study_runs,
    train_settings,
)
from unetscape.workflow.config_checks import validate_config
from unetscape.data.prepare import source_files
from unetscape.models.registry import module_file
from unetscape.run_ids import RECIPE_SUFFIX

try:
    validate_config(config, Path(workflow.basedir) / "config/schema/config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None

# Every param is taken from the config with its keys sorted: the same values in another key
# order re-run nothing (Snakemake compares dict params in key order).
_canonical = canonical(config)
config.clear()
config.update(_canonical)


# A device this machine cannot use is refused before any job starts when the jobs run here
# (onstart runs in a real run only, not in a dry run, which just plans; on a cluster's submit
# host the jobs check their own node before they write anything). torch is imported only for
# a GPU device. Nothing is deleted before onstart, so finished runs stay as they are.
onstart:
    if config["device"].startswith("cuda") and workflow.local_exec:
        from unetscape.device import device_problem

        _problem = device_problem(config["device"])
        if _problem:
            raise WorkflowError(_problem)


STUDIES = list(config["studies"])
# The landscape evaluation settings that enter the jobs' params (how a job runs stays out).
EVALUATION = evaluation_params(config)
# The runs some study with landscapes holds (a learning-rate sweep's runs have none).
LANDSCAPE_RUNS = set(landscape_runs(config))
# How the mode-connecting curves are trained (the studies they are for are not a setting of a curve).
CURVE_SETTINGS = {k: v for k, v in config["curves"].items() if k != "studies"}
# Models trained elsewhere, measured alone (results/landscape/external/{name}/).
EXTERNAL = config.get("external", {})
EXTERNAL_RUN = "results/runs/external/{name}"
EXTERNAL_LANDSCAPE = "results/landscape/external/{name}"
# Studies the findings' claims are about (unetscape/analysis/findings.py): a claim whose study is not
# configured is reported as not tested.
FINDINGS_STUDIES = ("seeds", "momentum", "noise", "skips", "stability")
DATASET = config["data"]["name"]
SURFACE_CHUNKS = config["landscape"]["plane"]["chunks"]
RUN_DIR = "results/runs/{arch}/{optim}/noise{noise}/seed{seed}"
RUN_LOG = "{arch}/{optim}/noise{noise}/seed{seed}"
LANDSCAPE_DIR = "results/landscape/{arch}/{optim}/noise{noise}/seed{seed}"
# The same pattern with its wildcards escaped, for gather.NAME(), which formats its argument.
LANDSCAPE_DIR_ESC = LANDSCAPE_DIR.replace("{", "{{").replace("}", "}}")
SURFACE_IN_PLANE_JOB = (
    {"surface": f"{LANDSCAPE_DIR}/random/surface.h5"} if SURFACE_CHUNKS == 1 else {}
)
# Resources of the jobs that run models: one GPU when the config's device may be one, of
# the kind the Slurm profile names (see unetscape/workflow/cluster.py), and `threads` of the machine's
# CPUs. Run locally, never more model jobs at once than the machine has CPUs, whatever --cores
# says: eight single-thread torch jobs on two CPUs ran a third slower than two (a cluster
# gives each job its own CPUs, so there the limit is not set).
if workflow.local_exec and "model_cpus" not in workflow.global_resources:
    workflow.register_resource("model_cpus", max(1, len(os.sched_getaffinity(0))))
GPU_JOB = {**gpu_resources(config), "model_cpus": config["threads"]}


wildcard_constraints:
    arch="|".join(config["archs"]),
    # an optimiser's name and the recipe's departures from the config (unetscape/run_ids.py)
    optim="(?:" + "|".join(config["optimizers"]) + ")" + RECIPE_SUFFIX,
    noise=r"[0-9][0-9.e+-]*",
    seed=r"\d+",
    seed_b=r"\d+",
    scatteritem=r"\d+-of-\d+",
    study="|".join(STUDIES),
    dataset=DATASET,
    name="|".join(EXTERNAL) or "(?!)",


# The package modules each rule's script runs, derived from its imports (see
# unetscape/workflow/code_inputs.py). Declared as inputs, an edit to one of them re-runs exactly the
# jobs that use it (Snakemake's code trigger only sees the script itself); relative to the
# working directory, so a moved project re-runs nothing.
def code(script):
    return code_inputs(
        Path(workflow.basedir) / "scripts" / script, Path(workflow.basedir) / "src"
    )


def get_dataset():
    return f"results/data/{DATASET}.npz"


# The image and mask files a folder data set (ISIC's too) is built from: an edited, added or
# removed file re-prepares the data set (and what was trained on it).
def get_source_files():
    return source_files(config["data"])


# The Python file of an arch built from a user's own module: an input of every job that
# builds the model, so an edit to it re-runs exactly those.
def arch_code(arch):
    path = module_file(arch_spec(config, arch))
    return [path] if path else []


def get_model_code(wildcards):
    return arch_code(wildcards.arch)


def get_scale_invariance_model_code(wildcards):
    return sorted(
        {
            p
            for run in config["scale_invariance"]["runs"]
            for p in arch_code(run.split("/")[0])
        }
    )


def get_external_checkpoint(wildcards):
    return EXTERNAL[wildcards.name]["checkpoint"]


def get_external_model_code(wildcards):
    return arch_code(EXTERNAL[wildcards.name]["arch"])


def get_external_spec(wildcards):
    return arch_spec(config, EXTERNAL[wildcards.name]["arch"])


def get_external_loss(wildcards):
    return EXTERNAL[wildcards.name].get("loss") or config["training"].get(
        "loss", "dice"
    )


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


def get_run_parts(wildcards):
    """Whether a run's curvature is also measured per part of its network: the runs of
    `curvature.parts.studies` (the skips study compares them), or every run with `every_run`.
    """
    parts = config["curvature"]["parts"]
    if parts["every_run"]:
        return True
    run = get_run_id(wildcards)
    return any(
        run in {r.id for r in study_runs(config, study)}
        for study in parts["studies"]
        if study in config["studies"]
    )


def get_run_noise(wildcards):
    return float(wildcards.noise)


def get_pair_measured(wildcards):
    """The measured-checkpoint links of both runs of a seed pair."""
    w = wildcards
    return [
        f"results/runs/{w.arch}/{w.optim}/noise{w.noise}/seed{seed}/measured.pt"
        for seed in (w.seed, w.seed_b)
    ]


def run_landscape(run, name):
    return f"results/landscape/{run.id}/{name}"


def seed_pairs(study):
    """Consecutive seed pairs (a, b) of every condition of a study: final A -> final B (none
    for a study without landscapes)."""
    if not study_has_landscapes(config, study):
        return []
    seeds = sorted(config["studies"][study]["seeds"])
    runs = [run for run in study_runs(config, study) if run.seed in seeds[:-1]]
    return [(run, seeds[seeds.index(run.seed) + 1]) for run in runs]


def curve_pairs(study):
    """The seed pairs of a study that get a mode-connecting curve (`curves.studies`)."""
    return seed_pairs(study) if study in config["curves"]["studies"] else []


def curve_path(run, seed_b):
    return pair_path(run, seed_b).replace("/interpolation.h5", "/curve.h5")


def get_study_curves(wildcards):
    return [curve_path(run, b) for run, b in curve_pairs(wildcards.study)]


def get_study_curve_pairs(wildcards):
    """[run a, run b, file] of each of the study's curves (the table and figure read them)."""
    return [
        [run.id, run.id.replace(f"/seed{run.seed}", f"/seed{b}"), curve_path(run, b)]
        for run, b in curve_pairs(wildcards.study)
    ]


def landscape_study_runs(study):
    """A study's runs whose landscapes it reads (none for a study without landscapes)."""
    return study_runs(config, study) if study_has_landscapes(config, study) else []


def pair_path(run, seed_b):
    w = run.wildcards
    return (
        f"results/landscape/{w['arch']}/{w['optim']}/noise{w['noise']}/"
        f"seeds{w['seed']}-{seed_b}/interpolation.h5"
    )


def get_study_surfaces(wildcards):
    return [
        run_landscape(run, "random/surface.h5")
        for run in landscape_study_runs(wildcards.study)
    ]


def get_study_trajectories(wildcards):
    return [
        run_landscape(run, "pca/surface.h5")
        for run in landscape_study_runs(wildcards.study)
    ]


def get_study_interpolations(wildcards):
    return {
        "init": [
            run_landscape(run, "interpolation_init.h5")
            for run in landscape_study_runs(wildcards.study)
        ],
        "pairs": [pair_path(run, b) for run, b in seed_pairs(wildcards.study)],
    }


def get_study_pair_labels(wildcards):
    return [f"{run.id} -> seed{b}" for run, b in seed_pairs(wildcards.study)]


def get_study_lines(wildcards):
    return [
        run_landscape(run, "random/line.h5")
        for run in landscape_study_runs(wildcards.study)
    ]


def get_study_hessians(wildcards):
    return [
        run_landscape(run, "hessian.json")
        for run in landscape_study_runs(wildcards.study)
    ]


def get_study_flatness(wildcards):
    return [
        run_landscape(run, "flatness.json")
        for run in landscape_study_runs(wildcards.study)
    ]


def get_study_measures(wildcards):
    """Every per-run file the study's table reads: the training's, the edge of stability's, and
    (for a study with landscapes) its surfaces, direction sets, curvature and flatness.
    """
    study, runs = wildcards.study, study_runs(config, wildcards.study)
    landscape = landscape_study_runs(study)
    return {
        "histories": [run_path(run, "history.csv") for run in runs],
        "outcomes": [run_path(run, "outcome.json") for run in runs],
        "eos": [run_landscape(run, "edge_of_stability.json") for run in runs],
        "surfaces": [run_landscape(run, "random/surface.h5") for run in landscape],
        "lines": [run_landscape(run, "random/line.h5") for run in landscape],
        "sets": [run_landscape(run, "random/sets.h5") for run in landscape],
        "hessians": [run_landscape(run, "hessian.json") for run in landscape],
        "flatness": [run_landscape(run, "flatness.json") for run in landscape],
        "eigen": [run_landscape(run, "eigen/surface.h5") for run in landscape],
        "pca": [run_landscape(run, "pca/surface.h5") for run in landscape],
        "curves": get_study_curves(wildcards),
    }


def get_poster_lr(wildcards):
    """The configured learning rate of the study's first optimiser (marked on its sweep)."""
    return float(
        config["optimizers"][config["studies"][wildcards.study]["optimizers"][0]]["lr"]
    )


def get_study_eos(wildcards):
    return [
        run_landscape(run, "edge_of_stability.json")
        for run in study_runs(config, wildcards.study)
    ]


# The study whose runs are made to generalise differently (training subsets and more); without
# it, the generalisation rule ranks measures over every study's runs.
GENERALISATION_STUDY = (
    "generalisation" if "generalisation" in config["studies"] else None
)


def get_generalisation_tables(wildcards):
    """The per-run tables the generalisation rule ranks measures over: the generalisation
    study's, or every study with landscapes."""
    if GENERALISATION_STUDY:
        return [f"results/tables/landscape_{GENERALISATION_STUDY}.csv"]
    return [
        f"results/tables/landscape_{study}.csv"
        for study in STUDIES
        if study_has_landscapes(config, study)
    ]


def get_scale_invariance_checkpoints(wildcards):
    return [
        f"results/runs/{run}/checkpoints" for run in config["scale_invariance"]["runs"]
    ]


def get_scale_invariance_measured(wildcards):
    """The measured-checkpoint link of every scale-invariance run."""
    return [
        f"results/runs/{run}/measured.pt" for run in config["scale_invariance"]["runs"]
    ]


def get_scale_invariance_norms(wildcards):
    """Each scale-invariance run's normalisation: the figure labels the plain U-Net the control."""
    return {
        run: arch_spec(config, Path(run).parts[0])["norm"]
        for run in config["scale_invariance"]["runs"]
    }


def get_scale_invariance_outcomes(wildcards):
    return [
        f"results/runs/{run}/outcome.json" for run in config["scale_invariance"]["runs"]
    ]


def get_study_histories(wildcards):
    return [run_path(run, "history.csv") for run in study_runs(config, wildcards.study)]


def get_study_outcomes(wildcards):
    return [
        run_path(run, "outcome.json") for run in study_runs(config, wildcards.study)
    ]


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


def get_findings_tables(wildcards):
    """The per-run landscape table of every study a claim of the findings reads."""
    return {
        study: f"results/tables/landscape_{study}.csv"
        for study in FINDINGS_STUDIES
        if study in config["studies"]
    }


def get_run_outputs(run):
    """A run's training, its edge-of-stability numbers and (a run of a study with landscapes)
    the landscape files the study rules read."""
    outputs = [
        run_path(run, "history.csv"),
        run_path(run, "outcome.json"),
        run_path(run, "checkpoints"),
        run_landscape(run, "edge_of_stability.json"),
    ]
    if run in LANDSCAPE_RUNS:
        outputs += [
            run_landscape(run, name)
            for name in (
                "random/surface.h5",
                "random/line.h5",
                "random/sets.h5",
                "pca/surface.h5",
                "interpolation_init.h5",
                "hessian.json",
                "flatness.json",
                "eigen/surface.h5",
            )
        ]
    return outputs


def get_training_tables(wildcards):
    return [f"results/tables/training_{study}.csv" for study in STUDIES]


def get_overview_settings(wildcards):
    """What the report's front page says was run (unetscape/plots/front_page.py, table_pages.py)."""
    archs = dict.fromkeys(
        a for spec in config["studies"].values() for a in spec["archs"]
    )
    return {
        "data": {"name": DATASET, "source": config["data"]["source"]},
        "archs": {name: arch_spec(config, name) for name in archs},
        "studies": config["studies"],
        "training": {
            "epochs": config["training"]["epochs"],
            "batch_size": config["training"]["batch_size"],
            "loss": config["training"].get("loss", "dice"),
            "optimizers": config["optimizers"],
        },
    }


def get_final_outputs():
    outputs = [
        get_dataset(),
        "results/tables/findings.csv",
        "results/tables/claims.csv",
        "results/report/findings.rst",
        "results/tables/generalisation.csv",
        "results/figures/generalisation.png",
        "results/report/overview.rst",
        "results/report/claims.rst",
        "results/report/findings.html",
        "results/report/generalisation.html",
    ]
    for study in STUDIES:
        outputs += [
            f"results/tables/training_{study}.csv",
            f"results/figures/{study}.png",
            f"results/figures/{study}.pdf",
            f"results/figures/{study}_metrics.png",
            f"results/figures/{study}_sharpness.png",
            f"results/tables/conditions_{study}.csv",
            f"results/report/conditions_{study}.html",
        ]
        if study_has_landscapes(config, study):
            outputs += [
                f"results/figures/{study}_landscape.png",
                f"results/figures/{study}_interpolation.png",
                f"results/figures/{study}_directions.png",
                f"results/figures/{study}_explore.html",
                f"results/figures/{study}_3d",
            ]
        if study_has_landscapes(config, study) and (
            config["curvature"]["parts"]["every_run"]
            or study in config["curvature"]["parts"]["studies"]
        ):
            outputs.append(f"results/figures/{study}_parts.png")
        # A sweep of learning rates gets its figure of failures against the learning rate.
        if len(config["studies"][study].get("lr", [])) > 1:
            outputs.append(f"results/figures/{study}_lr.png")
    # The scale check of built-in U-Net runs (none: a config of other networks only).
    if config["scale_invariance"]["runs"]:
        outputs.append("results/figures/scale_invariance.png")
    # Every run's own files are targets too: a run deleted (or a file of it) is made again,
    # and with it everything that reads it, though the tables and figures still exist.
    for run in all_runs(config):
        outputs += get_run_outputs(run)
    for study in STUDIES:
        outputs += [pair_path(run, b) for run, b in seed_pairs(study)]
        outputs += [curve_path(run, b) for run, b in curve_pairs(study)]
        if curve_pairs(study):
            outputs.append(f"results/figures/{study}_curves.png")
    # Per-run figures and ParaView files of each condition's first seed; any other run's on
    # request by file name (drawing them for every run cost a tenth of the default workflow).
    for run in first_seed_runs(config):
        outputs += [
            f"results/figures/landscape/{run.id}/{name}.png"
            for name in ("surface", "lines", "trajectory", "sharpest")
        ]
        outputs += [
            run_landscape(run, "random/surface.vts"),
            run_landscape(run, "pca/surface.vts"),
        ]
    # Models trained elsewhere: every landscape file (hessian.json and flatness.json
    # included) and the per-run figures; never part of a study's statistics.
    for name in EXTERNAL:
        outputs += [
            f"results/figures/landscape/external/{name}/{figure}.png"
            for figure in ("surface", "lines", "trajectory", "sharpest")
        ]
        outputs += [
            f"results/landscape/external/{name}/{path}"
            for path in (
                "random/surface.vts",
                "pca/surface.vts",
                "hessian.json",
                "flatness.json",
            )
        ]
    return outputs
