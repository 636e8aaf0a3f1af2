"""The smoke workflow end to end, and what Snakemake re-runs after a change."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from workflow_helpers import copy_workflow, load_smoke, planned_jobs, snakemake, write_config

from unetscape.analysis.findings import CLAIMS, claim_verdict, part_verdict
from unetscape.landscape.direction_sets import read_direction_sets
from unetscape.landscape.surface_io import read_surface
from unetscape.training.outcomes import OUTCOMES
from unetscape.workflow.code_inputs import script_modules
from unetscape.workflow.config import study_runs

pytestmark = pytest.mark.workflow


# smoke_run (tests/conftest.py): the smoke workflow run once for the whole session.


def test_smoke_workflow_produces_tables_and_figures(smoke_run):
    workdir, _ = smoke_run
    smoke = load_smoke()
    for study, spec in smoke["studies"].items():
        table = pd.read_csv(workdir / f"results/tables/training_{study}.csv")
        assert len(table) == len(study_runs(smoke, study))
        assert table["final_loss"].between(0, 1).all()
        assert ((table["epochs_run"] >= 1) & (table["epochs_run"] <= table["max_epochs"])).all()
        assert (table["max_epochs"] == (spec.get("epochs") or smoke["training"]["epochs"])).all() or spec.get("steps")
        assert set(table["outcome"]) <= set(OUTCOMES)
        assert (table["init"] == "kaiming_normal").all() and table["constant_dice"].between(0, 1).all()
        assert table["final_heldout_dice"].notna().all() and table["gap_loss"].notna().all()
        for ext in ("png", "pdf"):
            assert (workdir / f"results/figures/{study}.{ext}").stat().st_size > 1000
    run = workdir / "results/runs/simple/sgd/noise0/seed0"
    outcome = json.loads((run / "outcome.json").read_text())
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("*.pt"))
    assert checkpoints == [f"epoch_{e:03d}.pt" for e in range(outcome["epochs_run"] + 1)]
    history = pd.read_csv(run / "history.csv")
    assert (history["outcome"] == outcome["outcome"]).all()


def test_smoke_workflow_produces_landscapes(smoke_run):
    workdir, config_path = smoke_run
    smoke = load_smoke()
    plane = smoke["landscape"]["plane"]
    run = workdir / "results/landscape/improved/sgd/noise0/seed0"
    outcome = json.loads((workdir / "results/runs/improved/sgd/noise0/seed0/outcome.json").read_text())
    with h5py.File(run / "random/surface.h5", "r") as f:
        assert f["train_loss"].shape == (plane["y"][2], plane["x"][2])  # (ny, nx), the reference's layout
        assert f["dir_file"][()].decode().endswith("random/directions.h5")
        assert np.isfinite(f["train_loss"][()]).all()
        assert f.attrs["checkpoint"].endswith(outcome["landscape_checkpoint"])
        assert f.attrs["outcome"] == outcome["outcome"]
        assert f.attrs["direction_norm"] == plane["norm"]
        assert f.attrs["chunks"] == plane["chunks"]
    assert not list((run / "random/chunks").glob("*.h5"))  # temporary once merged
    with h5py.File(run / "pca/surface.h5", "r") as f:
        assert np.isfinite(f["train_loss"][()]).all()
    for study, spec in smoke["studies"].items():
        if not spec.get("landscapes", True):
            continue
        for name in (f"{study}_landscape", f"{study}_interpolation"):
            assert (workdir / f"results/figures/{name}.png").stat().st_size > 1000
    for name in ("surface", "lines", "trajectory"):
        assert (workdir / f"results/figures/landscape/improved/sgd/noise0/seed0/{name}.png").exists()
    # what the reference's tools read, and the 3-D views
    with h5py.File(run / "pca/directions.h5", "r") as f:
        assert f["explained_variance_ratio_"].shape == (2,)
    with h5py.File(run / "pca/projection.h5", "r") as f:
        assert len(f["proj_xcoord"]) == smoke["training"]["epochs"] + 1
    with h5py.File(run / "random/line_directions.h5", "r") as f:
        assert set(f) == {"xdirection"}
    with h5py.File(run / "interpolation_init.h5", "r") as f:
        assert "xcoordinates" in f
    for study, spec in smoke["studies"].items():
        if spec.get("landscapes", True):  # a study without landscapes has no 3-D page
            assert "Plotly.newPlot" in (workdir / f"results/figures/{study}_explore.html").read_text()
        else:
            assert not (workdir / f"results/figures/{study}_explore.html").exists()
    # a single run's 3-D page is built on request
    page = "results/figures/landscape/improved/sgd/noise0/seed0/explore.html"
    done = snakemake(workdir, page, "--configfile", str(config_path))
    assert [rule for rule, _ in planned_jobs(done.stdout + done.stderr)] == ["explore_run"]
    assert "Plotly.newPlot" in (workdir / page).read_text()
    for plane_name in ("random", "pca", "eigen"):
        assert (run / f"{plane_name}/surface.vts").read_bytes().startswith(b"<?xml")
    # the numbers of the next round: direction sets, the sharpest plane, the edge of stability,
    # a curve between seeds, and the link to the measured checkpoint
    sets = read_direction_sets(run / "random/sets.h5")
    assert sets["train_loss"].shape[0] == smoke["landscape"]["direction_sets"]["count"]
    assert np.isfinite(read_surface(run / "eigen/surface.h5")["train_loss"]).all()
    eos = json.loads((run / "edge_of_stability.json").read_text())
    assert eos["rows"] and eos["thresholds"]["full_batch"] > 0
    assert (workdir / "results/landscape/simple/sgd/noise0/seeds0-1/curve.h5").exists()
    assert (workdir / "results/figures/landscape/improved/sgd/noise0/seed0/sharpest.png").stat().st_size > 1000
    link = workdir / "results/runs/improved/sgd/noise0/seed0/measured.pt"
    assert link.is_symlink() and link.resolve().name == outcome["landscape_checkpoint"]


def test_smoke_workflow_produces_numbers_and_report(smoke_run, smoke_report):
    workdir, config_path = smoke_run
    smoke = load_smoke()
    hessian = json.loads((workdir / "results/landscape/improved/sgd/noise0/seed0/hessian.json").read_text())
    outcome = json.loads((workdir / "results/runs/improved/sgd/noise0/seed0/outcome.json").read_text())
    assert len(hessian["top_eigenvalues"]) == smoke["curvature"]["top_k"]
    assert hessian["top_eigenvalues"] == sorted(hessian["top_eigenvalues"], reverse=True)
    assert hessian["checkpoint"].endswith(outcome["landscape_checkpoint"])
    for study, spec in smoke["studies"].items():
        runs = pd.read_csv(workdir / f"results/tables/landscape_{study}.csv")
        assert len(runs) == len(study_runs(smoke, study))
        finished = runs[runs["outcome"] == "finished"]
        assert runs["step_volatility"].notna().all() and runs["probe_largest_rise"].notna().all()
        assert runs["eos_batch_ratio_final"].notna().all() and (runs["probe_horizon"] > 0).all()
        if spec.get("landscapes", True):
            assert finished["roughness"].notna().all() and finished["relative_lambda_max"].notna().all()
            assert runs["raw_lambda_max"].notna().all() and runs["roughness_se"].notna().all()
            assert runs["eigen_roughness"].notna().all() and runs["basins"].notna().all()
        conditions = pd.read_csv(workdir / f"results/tables/conditions_{study}.csv")
        assert conditions["n"].sum() == len(runs)
        counts = conditions[[f"n_{o}" for o in OUTCOMES]].sum(axis=1)
        assert (counts == conditions["n"]).all()
        assert (workdir / f"results/figures/{study}_metrics.png").stat().st_size > 1000
    assert (workdir / "results/figures/scale_invariance.png").stat().st_size > 1000
    skips = pd.read_csv(workdir / "results/tables/landscape_skips.csv")
    studied = {smoke["archs"][arch].get("skip", "concat") for arch in smoke["studies"]["skips"]["archs"]}
    assert set(skips["skip"]) == studied

    findings = pd.read_csv(workdir / "results/tables/findings.csv")
    assert set(findings["claim"]) == {"batchnorm", "momentum", "noise", "skips"}
    # every verdict follows from the primary comparisons by the stated rules, on invariant measures only
    assert not findings["metric"].dropna().str.startswith("raw_").any()
    for claim, rows in findings.groupby("claim"):
        parts = []
        for part, part_rows in rows.groupby("part", sort=False):
            # the secondary measures decide nothing; rows without a metric only say why nothing was compared
            compared = part_rows[part_rows["decision"].notna() & (part_rows["role"] == "primary")]
            records = [{"_stratum": r.within if isinstance(r.within, str) else "", "verdict": r.verdict}
                       for r in compared.itertuples()]
            assert (part_rows["part_verdict"] == part_verdict(records)).all(), (claim, part)
            parts.append(part_rows["part_verdict"].iloc[0])
        assert (rows["claim_verdict"] == claim_verdict(parts)).all(), claim
        undecided = rows[rows["decision"].isin(["inconclusive", "too few runs"])]
        # where an effect could be estimated (two runs per group), a plan of at least two seeds
        assert (undecided["seeds_needed"].dropna() >= 2).all()
    claims = pd.read_csv(workdir / "results/tables/claims.csv")
    assert set(zip(claims["claim"], claims["part"])) == {(c.key, p.key) for c in CLAIMS for p in c.parts}

    report = smoke_report.read_text(errors="replace")
    assert "scale_invariance" in report and "conditions_seeds.csv" in report and "seeds_3d/runs01-" in report
    # the front page says what was run and states the verdict on each claim
    assert "What was run" in report and "The poster's claims" in report
    assert "Batch norm gives normal behaviour" in report


def test_rerun_plans(smoke_run, tmp_path):
    workdir, config_path = smoke_run
    # Nothing to do right after a complete run.
    dry = snakemake(workdir, "--configfile", str(config_path), "-n")
    assert planned_jobs(dry.stdout) == [], dry.stdout

    # One more seed: only that seed's trainings and landscapes, plus the seeds study's summaries.
    config = load_smoke()
    config["studies"]["seeds"]["seeds"].append(7)
    more = write_config(workdir / "more_seeds.yaml", config)
    jobs = planned_jobs(snakemake(workdir, "--configfile", str(more), "-n").stdout)
    trains = [w for rule, w in jobs if rule == "train"]
    assert trains and all(w["seed"] == "7" for w in trains)
    spec = config["studies"]["seeds"]
    assert len(trains) == len(spec["archs"]) * len(spec["optimizers"])
    per_run = [w for rule, w in jobs if "arch" in w]
    assert all("7" in (w.get("seed"), w.get("seed_b")) for w in per_run), per_run
    studies = {w["study"] for _, w in jobs if "study" in w}
    assert studies == {"seeds"}
    assert "prepare_dataset" not in {rule for rule, _ in jobs}

    # A finer landscape grid re-runs landscape jobs only, never training.
    config = load_smoke()
    config["landscape"]["plane"]["x"] = [-1, 1, 7]
    finer = write_config(workdir / "finer.yaml", config)
    rules = {rule for rule, _ in planned_jobs(snakemake(workdir, "--configfile", str(finer), "-n").stdout)}
    # one chunk per surface in the smoke config: the plane job computes the surface itself
    assert smoke_chunks() == 1 and "random_plane" in rules
    assert not rules & {"train", "prepare_dataset", "run_measures", "interpolate_seeds"}

    # Editing the loss re-runs every training (and what depends on it), never data preparation.
    # (Snakemake compares checksums, so the file's content must change, not just its mtime.)
    # In a copy: the other tests use the finished project as it is.
    copy = moved_copy(workdir, tmp_path / "edited")
    losses = copy / "src/unetscape/models/losses.py"
    losses.write_text(losses.read_text() + "\n# edited\n")
    rules = {rule for rule, _ in planned_jobs(snakemake(copy, "--configfile", str(copy / config_path.name), "-n").stdout)}
    assert "train" in rules and "prepare_dataset" not in rules


def moved_copy(workdir, dest):
    """The finished project copied to another folder, metadata and results included."""
    shutil.copytree(workdir, dest, symlinks=True)
    return dest


def test_a_moved_project_reruns_nothing_and_reordered_keys_change_nothing(smoke_run, tmp_path):
    workdir, config_path = smoke_run
    moved = moved_copy(workdir, tmp_path / "elsewhere" / "renamed")
    dry = snakemake(moved, "--configfile", str(moved / config_path.name), "-n")
    assert planned_jobs(dry.stdout) == [], dry.stdout

    def reverse(value):
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in reversed(list(value))}
        return value

    reordered = moved / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(reverse(load_smoke()), sort_keys=False))
    assert reordered.read_text() != (moved / config_path.name).read_text()
    dry = snakemake(moved, "--configfile", str(reordered), "-n")
    assert planned_jobs(dry.stdout) == [], dry.stdout


def test_a_deleted_run_is_made_again_with_everything_downstream(smoke_run, tmp_path):
    """A user deletes a run they distrust: the default workflow trains it again and redoes
    every job that reads it, and nothing else."""
    workdir, config_path = smoke_run
    copy = moved_copy(workdir, tmp_path / "deleted_run")
    config = ["--configfile", str(copy / config_path.name)]
    run = "results/runs/simple/sgd/noise0/seed0"

    def jobs(*args):
        return sorted((rule, tuple(sorted(w.items()))) for rule, w in planned_jobs(snakemake(copy, *config, "-n", *args).stdout))

    # A run's landscape file deleted: the job that wrote it and what reads it, never training.
    # (What depends on a file, by Snakemake's own DAG: forcing the job that writes it re-runs exactly that.)
    hessian = "results/landscape/simple/sgd/noise0/seed0/hessian.json"
    downstream = jobs("--forcerun", hessian)
    (copy / hessian).unlink()
    planned = jobs()
    assert planned == downstream and ("run_measures", (("arch", "simple"), ("noise", "0"), ("optim", "sgd"),
                                                         ("seed", "0"))) in planned
    assert not {rule for rule, _ in planned} & {"train", "prepare_dataset", "random_plane"}

    # The whole run deleted: its training and everything after it.
    downstream = jobs("--forcerun", f"{run}/history.csv")
    shutil.rmtree(copy / run)
    planned = jobs()
    assert planned == downstream
    trains = [dict(w) for rule, w in planned if rule == "train"]
    assert trains == [{"arch": "simple", "optim": "sgd", "noise": "0", "seed": "0"}]
    rules = {rule for rule, _ in planned}
    assert "prepare_dataset" not in rules
    # the run's own landscape jobs, and the tables of every study that holds it
    assert {"random_plane", "run_measures", "training_table", "landscape_metrics", "findings"} <= rules
    holding = {study for study in load_smoke()["studies"]
               if "simple/sgd/noise0/seed0" in {r.id for r in study_runs(load_smoke(), study)}}
    assert {dict(w)["study"] for rule, w in planned if rule == "training_table"} == holding


def file_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "results").rglob("*")) if p.is_file()}


def test_how_a_job_runs_reruns_nothing_and_an_unusable_device_deletes_nothing(smoke_run, tmp_path):
    """The device, and the evaluation's batch size and points per pass, are how a job runs: a
    change re-runs nothing. A GPU this machine lacks is refused before any job starts, and every
    finished file stays byte for byte."""
    workdir, config_path = smoke_run
    copy = moved_copy(workdir, tmp_path / "device")
    for device in ("auto", "cuda", "cuda:1"):
        config = load_smoke()
        config["device"] = device
        config["landscape"]["evaluation"].update(batch_size=3, points_per_pass=2)
        path = write_config(copy / f"device_{device.replace(':', '')}.yaml", config)
        dry = snakemake(copy, "--configfile", str(path), "-n")
        assert planned_jobs(dry.stdout) == [], dry.stdout
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal of an unusable device cannot be shown here")
    # One landscape file to remake, so the run would start a job on the GPU it asks for.
    (copy / "results/landscape/simple/sgd/noise0/seed0/hessian.json").unlink()
    before = file_digests(copy)
    proc = snakemake(copy, "--configfile", str(copy / "device_cuda.yaml"), check=False)
    assert proc.returncode != 0
    assert "config key device: 'cuda' asks for a GPU" in proc.stdout + proc.stderr
    assert file_digests(copy) == before


def test_a_replaced_checkpoint_reruns_that_runs_landscape_jobs_only(smoke_run, tmp_path):
    """The checkpoint a run's landscapes measure is an input of its own: replaced inside the
    run's checkpoints folder, it re-runs that run's landscape jobs (and what reads them), never
    training and never another run's jobs."""
    workdir, config_path = smoke_run
    copy = moved_copy(workdir, tmp_path / "replaced")
    run = {"arch": "improved", "optim": "sgd_momentum", "noise": "0", "seed": "0"}
    folder = copy / "results/runs/improved/sgd_momentum/noise0/seed0"
    measured = json.loads((folder / "outcome.json").read_text())["landscape_checkpoint"]
    assert measured != "epoch_001.pt"
    shutil.copyfile(folder / "checkpoints/epoch_001.pt", folder / "checkpoints" / measured)
    jobs = planned_jobs(snakemake(copy, "--configfile", str(copy / config_path.name), "-n").stdout)
    rules = {rule for rule, _ in jobs}
    assert {"random_plane", "run_measures"} <= rules
    assert not rules & {"train", "prepare_dataset"}
    for rule, wildcards in jobs:
        if "arch" in wildcards:  # a job of one run (or of a seed pair that holds this run)
            assert {k: wildcards[k] for k in ("arch", "optim", "noise")} == {k: run[k] for k in ("arch", "optim", "noise")}
            assert run["seed"] in (wildcards.get("seed"), wildcards.get("seed_b")), (rule, wildcards)


def smoke_chunks() -> int:
    return load_smoke()["landscape"]["plane"]["chunks"]


def rules_running(workdir: Path, module: str) -> set[str]:
    """The rules whose script imports `module` (a path under src/unetscape), of those the smoke config defines."""
    rules = set()
    for smk in (workdir / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=[ ]*(?:rule|checkpoint) \w+:)", smk.read_text()):
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', block)
            if script and str(workdir / "src/unetscape" / module) in map(
                str, script_modules(workdir / "scripts" / script.group(1), workdir / "src")
            ):
                rules.add(re.match(r"(?:rule|checkpoint) (\w+):", block.strip()).group(1))
    if smoke_chunks() == 1:  # the chunk rules exist only for surfaces split into chunks
        rules -= {"surface_chunk", "merge_surface"}
    if not load_smoke().get("external"):  # the rules of models trained elsewhere have no jobs then
        rules -= set(re.findall(r"^rule (\w+):", (workdir / "rules/external.smk").read_text(), re.M))
    return rules


@pytest.mark.parametrize(
    "module", ["landscape/folding.py", "training/tables.py", "analysis/findings.py", "plots/style.py"]
)
def test_editing_a_package_module_reruns_exactly_the_rules_that_run_it(smoke_run, tmp_path, module):
    workdir, config_path = smoke_run
    moved = moved_copy(workdir, tmp_path / "copy")
    path = moved / "src/unetscape" / module
    path.write_text(path.read_text() + "\n# edited\n")
    planned = {rule for rule, _ in planned_jobs(snakemake(moved, "--configfile", str(moved / config_path.name), "-n").stdout)}
    direct = rules_running(moved, module)
    assert direct and direct <= planned
    # everything else planned only consumes the outputs of those rules
    assert planned - direct <= DOWNSTREAM[module], (module, planned - direct)


# What may re-run because an edited module's rules produce its inputs (all of it downstream).
_FIGURES = {"run_figures", "landscape_figure", "interpolation_figure", "metrics_figure", "scale_invariance_figure",
            "training_figure", "sharpness_figure", "directions_figure", "curves_figure", "parts_figure",
            "learning_rate_figure", "all"}
# The report's pages of numbers and 3-D views, downstream of every table and surface.
_PAGES = {"study_3d", "conditions_page", "findings_pages", "generalisation_page", "report_overview"}
DOWNSTREAM = {
    "landscape/folding.py": {"merge_surface", "landscape_metrics", "findings", "generalisation", "explore_study"}
    | _FIGURES | _PAGES,
    "training/tables.py": {"findings", "generalisation", "metrics_figure", "sharpness_figure", "directions_figure",
                           "parts_figure", "learning_rate_figure", "all"} | _PAGES,
    "analysis/findings.py": {"findings_pages", "all"},
    "plots/style.py": {"generalisation_page", "all"},  # the generalisation rule draws with it
}


def test_single_figure_target_builds_only_what_it_needs(tmp_path):
    workdir = copy_workflow(tmp_path)
    config = write_config(workdir / "smoke.yaml", load_smoke())
    dry = snakemake(workdir, "--configfile", str(config), "-n", "results/figures/seeds.png")
    jobs = planned_jobs(dry.stdout)
    rules = sorted({rule for rule, _ in jobs})
    assert rules == ["prepare_dataset", "train", "training_figure"]
    trains = [w for rule, w in jobs if rule == "train"]
    assert all(w["noise"] == "0" for w in trains)  # the noise study's noisy runs are not needed
    seeds = load_smoke()["studies"]["seeds"]
    assert len(trains) == len(seeds["archs"]) * len(seeds["optimizers"]) * len(seeds["seeds"])


@pytest.mark.parametrize(
    "edit,expected",
    [
        (lambda c: c["training"].update(epochs=0), "training.epochs"),
        (lambda c: c["studies"]["seeds"].update(archs=["simple", "fancy"]), "studies.seeds.archs"),
        (lambda c: c.update(colour="red"), "'colour' was unexpected"),
        (lambda c: c["data"].update(source="isic"), "data.images_dir"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, edit, expected):
    workdir = copy_workflow(tmp_path)
    config = load_smoke()
    edit(config)
    path = write_config(workdir / "bad.yaml", config)
    proc = snakemake(workdir, "--configfile", str(path), "-n", check=False)
    assert proc.returncode != 0
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if expected in line]
    assert lines, proc.stdout + proc.stderr
    assert lines[0].count("config key") == 1


def diverging_config() -> dict:
    """The smoke config shrunk to one study whose every run diverges in its first epoch."""
    config = load_smoke()
    config["optimizers"] = {"sgd": {"lr": 1.0e30, "momentum": 0.0}}  # every step blows the weights up
    config["training"]["epochs"] = 3
    config["landscape"]["plane"].update(x=[-1, 1, 3], y=[-1, 1, 3])
    config["landscape"]["line"]["x"] = [-1, 1, 3]
    config["landscape"]["interpolation"]["t"] = [-0.5, 1.5, 5]
    config["landscape"]["trajectory"]["num"] = 3
    config["scale_invariance"].update(runs=["simple/sgd/noise0/seed0", "improved/sgd/noise0/seed0"], x=[-1, 1, 3])
    config["studies"] = {"seeds": {"title": "Random initialisations", "archs": ["simple", "improved"],
                                   "optimizers": ["sgd"], "noise": [0], "seeds": [0, 1]}}
    return config


def test_a_study_whose_every_run_diverged_still_gets_its_figures(tmp_path):
    workdir = copy_workflow(tmp_path)
    config = write_config(workdir / "diverging.yaml", diverging_config())
    snakemake(workdir, "--configfile", str(config))  # exits 0, or the helper raises with the log
    outcomes = [json.loads(p.read_text())["outcome"] for p in (workdir / "results/runs").glob("*/*/*/*/outcome.json")]
    assert outcomes == ["diverged"] * 4
    figures = workdir / "results/figures"
    for name in ("seeds", "seeds_landscape", "seeds_interpolation", "seeds_metrics", "scale_invariance",
                 "generalisation"):
        for ext in ("png", "pdf"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000, name
    for name in ("surface", "lines", "trajectory"):
        assert (figures / f"landscape/simple/sgd/noise0/seed0/{name}.png").stat().st_size > 1000
    assert "Plotly.newPlot" in (figures / "seeds_explore.html").read_text()
    assert list((figures / "generalisation").glob("*.png"))
    findings = pd.read_csv(workdir / "results/tables/findings.csv")
    smoother = findings[(findings["claim"] == "batchnorm") & (findings["part"] == "smoother")]
    assert smoother["verdict"].iloc[0] == "no runs to compare (no finished run: all 4 diverged)"
    table = pd.read_csv(workdir / "results/tables/conditions_seeds.csv")
    assert table["n_diverged"].sum() == 4 and table["n_finished"].sum() == 0
    # and nothing is left to do
    assert planned_jobs(snakemake(workdir, "--configfile", str(config), "-n").stdout) == []


def isic_folders(root: Path, ids) -> tuple[Path, Path]:
    """Small ISIC-named images with a lesion box each, and their masks."""
    from PIL import Image

    images, masks = root / "data/images", root / "data/masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for k in ids:
        box = (4 + k % 6, 4, 18 + k % 9, 16)
        image = Image.new("RGB", (24, 24), (210, 170, 150))
        image.paste((90, 55, 40), box)
        image.save(images / f"ISIC_{k:07d}.jpg", quality=95)
        mask = Image.new("L", (24, 24), 0)
        mask.paste(255, box)
        mask.save(masks / f"ISIC_{k:07d}_Segmentation.png")
    return images, masks


def test_an_edited_or_added_isic_file_reprepares_the_data_and_retrains(tmp_path):
    workdir = copy_workflow(tmp_path)
    images, masks = isic_folders(workdir, range(24))
    config = load_smoke()
    config["data"] = {"name": "isic", "source": "isic", "images_dir": "data/images", "masks_dir": "data/masks",
                      "size": 16, "num_images": None, "heldout": 8, "seed": 0}
    path = write_config(workdir / "isic.yaml", config)
    target = "results/runs/simple/sgd/noise0/seed0/outcome.json"
    snakemake(workdir, target, "--configfile", str(path))  # targets first: --configfile takes every later word
    provenance = json.loads(str(np.load(workdir / "results/data/isic.npz")["provenance"]))
    assert provenance["heldout"]["source"] == "split" and provenance["count"] == 16

    def planned():
        return [rule for rule, _ in planned_jobs(snakemake(workdir, "-n", target, "--configfile", str(path)).stdout)]

    assert planned() == []
    # a mask edited in place (an annotation fixed), then an image and its mask added
    from PIL import Image

    mask = Image.new("L", (24, 24), 0)
    mask.paste(255, (2, 2, 20, 20))
    mask.save(masks / "ISIC_0000003_Segmentation.png")
    assert sorted(planned()) == ["prepare_dataset", "train"]
    snakemake(workdir, target, "--configfile", str(path))
    assert planned() == []
    isic_folders(workdir, [24])
    assert sorted(planned()) == ["prepare_dataset", "train"]
