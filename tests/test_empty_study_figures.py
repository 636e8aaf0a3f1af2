"""Figures and findings of a study none of whose runs gave a landscape: every panel with
nothing to draw says why, inside its own panel, and nothing fails."""

import h5py
import numpy as np
import pandas as pd
import pytest

from unetscape.analysis.findings import findings_table
from unetscape.analysis.generalisation import generalisation
from unetscape.analysis.tables import conditions
from unetscape.landscape.surface_io import write_attrs
from unetscape.plots import generalisation as generalisation_plots
from unetscape.plots import interactive, landscape, metrics, training
from unetscape.plots.style import plt
from unetscape.training.outcome_words import no_finished_run, outcome_counts

RUNS = ["simple/sgd/noise0/seed0", "simple/sgd/noise0/seed1", "improved/sgd/noise0/seed0", "improved/sgd/noise0/seed1"]
ARCHS = {"simple": {"norm": "none", "skip": "concat"}, "improved": {"norm": "batch", "skip": "concat"}}
STUDY = {"study": "seeds", "title": "Diverging", "runs": RUNS, "archs": ARCHS}
NO_WEIGHTS = ("no trained weights to measure: the run diverged (a loss or weight became non-finite) before a "
              "checkpoint after epoch 0 was saved")
DIVERGED = {"outcome": "diverged", "checkpoint_role": "none", "unavailable": NO_WEIGHTS}
SETTINGS = {"level": 0.95, "bootstrap": 200, "seed": 0, "min_runs": 3, "alpha": 0.05}


@pytest.fixture
def figures(monkeypatch):
    """Every figure the plotting functions would save, drawn and kept open for inspection."""
    drawn = []

    def keep(fig, *paths):
        fig.canvas.draw()
        drawn.append(fig)

    for module in (landscape, metrics, generalisation_plots, training):
        monkeypatch.setattr(module, "save_figure", keep)
    yield drawn
    for fig in drawn:
        plt.close(fig)


def panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def words(ax) -> str:
    return " ".join(t.get_text().replace("\n", " ") for t in ax.texts)


def assert_empty_panels_say(fig, expected: str, count: int | None = None) -> None:
    """Every panel left empty (axes off) says `expected`, and its words stay inside the figure
    and off every other panel."""
    renderer = fig.canvas.get_renderer()
    empty = [ax for ax in panels(fig) if not ax.axison]
    assert empty and (count is None or len(empty) == count), [words(ax) for ax in panels(fig)]
    for ax in empty:
        assert expected in words(ax), words(ax)
        for text in ax.texts:
            box = text.get_window_extent(renderer)
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, text.get_text()
            for other in panels(fig):
                if other is not ax:
                    assert not box.overlaps(other.get_window_extent(renderer)), (text.get_text(), words(other))


def test_outcome_words():
    assert outcome_counts(["diverged"] * 3) == "all 3 diverged"
    assert outcome_counts(["collapsed", "collapsed"]) == "both collapsed"
    assert outcome_counts(["not_converged"]) == "the only run not converged"
    assert outcome_counts(["collapsed", "diverged", "diverged"]) == "2 diverged, 1 collapsed"
    assert no_finished_run(["diverged"] * 3) == "no finished run: all 3 diverged"
    assert no_finished_run([]) == "no run"


def nan_surface(outcome="diverged"):
    x = np.linspace(-1, 1, 5)
    return {"xcoordinates": x, "ycoordinates": x, "train_loss": np.full((5, 5), np.nan),
            "attrs": {"outcome": outcome, "checkpoint_role": "last finite weights before divergence"}}


def test_shared_levels_of_no_surface():
    assert len(landscape.shared_levels([], 7)) == 7
    assert len(landscape.shared_levels([nan_surface()], 7)) == 7


def test_study_panels_of_all_nan_and_unavailable_surfaces(figures):
    unavailable = {"attrs": DIVERGED}
    landscape.plot_panels([("simple", [("seed 0", nan_surface()), ("seed 1", unavailable)]),
                           ("improved", [("seed 0", unavailable), ("seed 1", nan_surface())])], "Diverging", "x.png")
    (fig,) = figures
    assert_empty_panels_say(fig, "no landscape", count=4)
    assert sum("no finite Dice loss" in words(ax) for ax in panels(fig)) == 2
    assert sum(NO_WEIGHTS in words(ax) for ax in panels(fig)) == 2
    assert "no finished run: all 4 diverged" in fig._suptitle.get_text()
    assert not [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]  # no scale of nothing


def test_run_views_of_an_all_nan_surface(figures):
    landscape.plot_surface_views(nan_surface(), "simple/sgd/noise0/seed0", "x.png")
    (fig,) = figures
    assert_empty_panels_say(fig, "no finite Dice loss", count=1)
    assert "[diverged: last finite weights before divergence]" in fig.axes[0].get_title()


def write_curve(path, outcome_attrs, n=9):
    with h5py.File(path, "w") as f:
        f.create_dataset("t", data=np.linspace(-0.5, 1.5, n))
        f.create_dataset("train_loss", data=np.full(n, np.nan))
        write_attrs(f, outcome_attrs)
    return path


def test_interpolations_of_runs_without_weights(figures, tmp_path):
    inits = [write_curve(tmp_path / f"init{k}.h5", DIVERGED) for k in range(4)]
    pairs = [write_curve(tmp_path / f"pair{k}.h5", {"unavailable": NO_WEIGHTS}) for k in range(2)]
    labels = ["simple/sgd/noise0/seed0 -> seed1", "improved/sgd/noise0/seed0 -> seed1"]
    landscape.plot_study_interpolations(STUDY, inits, labels, pairs, False, "x.png")
    (fig,) = figures
    # one panel per architecture for the paths from the initial weights (both runs diverged)
    # and one for the seed pairs (no trained weights at either end)
    assert_empty_panels_say(fig, "no curve: none has a finite loss", count=4)
    assert sum("(both diverged)" in words(ax) for ax in panels(fig)) == 2
    assert "[diverged: none]" not in " ".join(t.get_text() for t in fig.texts)  # no role of weights never saved


def diverged_runs_table() -> pd.DataFrame:
    """A study's per-run table when every run diverged before a landscape could be measured."""
    rows = []
    for run in RUNS:
        arch, optimizer, noise, seed = run.split("/")
        rows.append({"run": run, "arch": arch, "optimizer": optimizer, "noise": 0.0, "seed": int(seed[4:]),
                     "norm": ARCHS[arch]["norm"], "skip": "concat", "outcome": "diverged", "diverged": True,
                     "final_heldout_dice": 0.2, "gap_loss": 0.01, "roughness": np.nan, "relative_lambda_max": np.nan,
                     "relative_nonconvexity": np.nan, "relative_trace": np.nan, "sharpness_r0.25": np.nan,
                     "largest_rise": np.nan, "step_volatility": np.nan, "loss_rises": np.nan,
                     "final_above_best": np.nan, "probe_largest_rise": np.nan, "probe_volatility": np.nan,
                     "probe_rises": np.nan})
    return pd.DataFrame(rows)


def test_metrics_of_a_study_with_no_finished_run(figures, tmp_path):
    runs = diverged_runs_table()
    runs.to_csv(tmp_path / "runs.csv", index=False)
    conditions(runs, SETTINGS).to_csv(tmp_path / "conditions.csv", index=False)
    metrics.plot_study_metrics(STUDY, tmp_path / "runs.csv", tmp_path / "conditions.csv", "x.png")
    (fig,) = figures
    # the three landscape numbers and the largest probe rise (a diverged run has no finite probe
    # curve to measure it on) say why
    assert_empty_panels_say(fig, "no finished run: all 4 diverged", count=4)
    assert not [ax for ax in panels(fig) if ax.axison]


def test_scale_invariance_of_runs_without_weights(figures, tmp_path):
    path = tmp_path / "scale.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("xcoordinates", data=np.linspace(-1, 1, 7))
        f.create_dataset("train_loss", data=np.full((2, 2, 3, 7), np.nan))
        write_attrs(f, {"runs": RUNS[::2], "norms": ["none", "filter"], "factors": [1.0, 0.5, 2.0],
                        "outcomes": ["diverged", "diverged"], "checkpoints": [None, None]})
    metrics.plot_scale_invariance(path, "x.png")
    (fig,) = figures
    assert_empty_panels_say(fig, "no curve: no trained weights (run diverged)", count=4)
    assert not any(ax.get_legend() for ax in fig.axes)


def test_generalisation_with_no_finished_run(figures):
    runs = diverged_runs_table()
    table = generalisation(runs, SETTINGS, measures=["roughness", "relative_lambda_max"])
    generalisation_plots.plot_ranking(table, "x.png", outcomes=list(runs["outcome"]))
    generalisation_plots.plot_measure(runs, table, "roughness", "y.png")
    ranking, measure = figures
    assert_empty_panels_say(ranking, "no measure ranked: no finished run: all 4 diverged", count=2)
    assert_empty_panels_say(measure, "no finished run: all 4 diverged", count=2)


def test_training_panels_of_runs_that_diverged_in_their_first_epoch(figures, tmp_path):
    paths = []
    for k, run in enumerate(RUNS):
        history = pd.DataFrame({"kind": ["epoch", "step"], "step": [0, 1], "epoch": [0, 1], "loss": [0.7 + k / 100, np.nan],
                                "dice": [0.25, np.nan], "iou": [0.14, np.nan], "diverged": [False, True],
                                "outcome": ["diverged", "diverged"]})
        paths.append(tmp_path / f"history{k}.csv")
        history.to_csv(paths[-1], index=False)
    training.plot_training_study(STUDY, paths, "x.png")
    (fig,) = figures
    # each run marked where it diverged, on its loss and its Dice panel
    assert sum(line.get_marker() == "x" for ax in panels(fig) for line in ax.lines) == 2 * len(RUNS)
    for ax in panels(fig):  # whole epochs on the axis, not -0.045, -0.03, ... around epoch 0
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_a_3d_page_of_a_run_without_weights_says_why():
    unavailable = {"xcoordinates": np.linspace(-1, 1, 5), "ycoordinates": np.linspace(-1, 1, 5),
                   "train_loss": np.full((5, 5), np.nan), "attrs": DIVERGED}
    fig = interactive.run_page_figure("simple/sgd/noise0/seed0", unavailable, unavailable)
    texts = [a.text.replace("<br>", " ") for a in fig.layout.annotations]
    assert any(f"no landscape: {NO_WEIGHTS}" in t for t in texts), texts
    assert any(f"no trajectory: {NO_WEIGHTS}" in t for t in texts), texts
    assert all(len(line) <= 48 for a in fig.layout.annotations for line in a.text.split("<br>")
               if "random" not in line and "PCA" not in line)


def test_findings_say_why_a_claim_has_no_runs():
    runs = diverged_runs_table()
    table = findings_table({"seeds": (runs, "results/tables/landscape_seeds.csv")}, SETTINGS)
    claim = table[table["claim"] == "batchnorm"]
    smoother = claim[claim["part"] == "smoother"].iloc[0]
    assert smoother["part_verdict"] == "not tested"
    assert smoother["verdict"] == "no runs to compare (no finished run: all 4 diverged)"
    # every run diverged: the rate of failed runs still compares (2 of 2 each way)
    rate = claim[claim["metric"] == "failed"]
    assert len(rate) and (rate["mean_a"] == 1).all() and (rate["mean_b"] == 1).all()
