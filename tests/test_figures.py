"""The study figures as a reader sees them at the report's width: layout, titles, styles."""

import itertools

import numpy as np
import pandas as pd
import pytest

from unetscape.plots import landscape, training
from unetscape.plots.style import MAX_COLUMNS, MAX_WIDTH, seed_style

PLAIN = {"norm": "none", "skip": "concat", "init": "kaiming_normal", "depth": 2, "base_width": 4}
ARCHS = {
    "simple": PLAIN,
    "simple_add": {**PLAIN, "skip": "add"},
    "simple_noskip": {**PLAIN, "skip": "none"},
    "improved": {**PLAIN, "norm": "batch"},
    "improved_add": {**PLAIN, "norm": "batch", "skip": "add"},
    "improved_noskip": {**PLAIN, "norm": "batch", "skip": "none"},
}
# The default config's studies: 2 x 2 x 5 seed runs, 2 x 3 x 3 noise runs, 6 x 3 skip runs.
STUDIES = {
    "seeds": (["simple", "improved"], ["sgd", "sgd_momentum"], [0], [0, 1, 2, 3, 4]),
    "momentum": (["simple", "improved"], ["sgd", "sgd_momentum"], [0], [0, 1, 2, 3, 4]),
    "noise": (["simple", "improved"], ["sgd_momentum"], [0, 0.1, 0.2], [0, 1, 2]),
    "skips": (list(ARCHS), ["sgd_momentum"], [0], [0, 1, 2]),
}


def study(name):
    archs, optimizers, noise, seeds = STUDIES[name]
    runs = [f"{a}/{o}/noise{n:g}/seed{s}" for a, o, n, s in itertools.product(archs, optimizers, noise, seeds)]
    return {"study": name, "title": f"The {name} study", "runs": runs, "archs": {a: ARCHS[a] for a in archs}}


def fake_surface(run: str, outcome: str = "finished", n: int = 7) -> dict:
    x = np.linspace(-1, 1, n)
    y = np.linspace(-1, 1, n + 2)  # not square: rows are y
    seed = sum(map(ord, run))
    loss = 0.3 + 0.2 * (x[None, :] ** 2 + y[:, None] ** 2) + 0.01 * (seed % 7)
    return {"xcoordinates": x, "ycoordinates": y, "train_loss": loss, "dice": 1 - loss, "iou": 1 - 2 * loss,
            "attrs": {"outcome": outcome, "checkpoint_role": "final weights"}}


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting functions would save, drawn instead of saved."""
    figures = []

    def keep(fig, *paths):
        fig.canvas.draw()
        figures.append(fig)

    for module in (landscape, training):
        monkeypatch.setattr(module, "save_figure", keep)
    yield figures
    import matplotlib.pyplot as plt

    for fig in figures:
        plt.close(fig)


def titles(fig):
    """Every title of a figure, its subfigures and its axes, with its extent on the canvas."""
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle] + [sub._suptitle for sub in fig.subfigs]
    for ax in fig.get_axes():
        texts += [ax.title, ax._left_title, ax._right_title]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t is not None and t.get_text()]


def assert_no_overlap(fig):
    boxes = titles(fig)
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"titles overlap: {a!r} and {b!r}"


def panel_axes(fig):
    return [ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>" and ax.axison and ax.get_title()]


@pytest.mark.parametrize("name", list(STUDIES))
def test_study_landscape_is_legible_at_report_width(name, drawn, monkeypatch):
    spec = study(name)
    outcomes = ["finished", "not_converged", "finished", "collapsed"]
    surfaces = {run: fake_surface(run, outcomes[k % 4]) for k, run in enumerate(spec["runs"])}
    monkeypatch.setattr(landscape, "_read", lambda path: surfaces[path])
    landscape.plot_study_surfaces(spec, spec["runs"], 15, "unused.png")
    (fig,) = drawn
    assert fig.get_figwidth() <= MAX_WIDTH + 0.5
    assert_no_overlap(fig)
    panels = panel_axes(fig)
    assert len([ax for ax in panels if not ax.get_title().startswith("difference")]) == len(spec["runs"])
    for sub in fig.subfigs:
        assert len([ax for ax in sub.get_axes() if ax.axison]) <= MAX_COLUMNS
    for ax in panels:
        assert ax.get_xlabel() and ax.get_ylabel(), f"panel {ax.get_title()!r} has no axis labels"
    # colour-bar ticks are round numbers, not contour levels such as 0.0641
    for bar in [ax for ax in fig.get_axes() if ax.get_label() == "<colorbar>"]:
        for tick in bar.get_xticklabels():
            assert len(tick.get_text().lstrip("−-").replace(".", "")) <= 3, tick.get_text()


def test_momentum_figure_puts_optimisers_side_by_side_with_their_difference():
    spec = study("momentum")
    from unetscape.training.tables import parse_run_id

    runs = [parse_run_id(r) for r in spec["runs"]]
    surfaces = [fake_surface(r) for r in spec["runs"]]
    rows, factor = landscape.study_rows(spec, runs, surfaces)
    assert factor == "optimizer"
    assert len(rows) == 2 * 5  # one row per architecture and seed
    for heading, row in rows:
        assert "seed" in heading
        assert [label for label, _ in row[:2]] == ["sgd", "sgd_momentum"]
        a, b, diff = row[0][1], row[1][1], row[2][1]
        np.testing.assert_allclose(diff["train_loss"], np.asarray(b["train_loss"]) - np.asarray(a["train_loss"]))
    # the seeds study of the same runs compares seeds instead: not the same figure
    seed_rows, seed_factor = landscape.study_rows(study("seeds"), runs, surfaces)
    assert seed_factor == "seed" and [label for label, _ in seed_rows[0][1]] == [f"seed {s}" for s in range(5)]


def test_difference_needs_two_surfaces_on_one_grid():
    a, b = fake_surface("a"), fake_surface("b")
    assert landscape.difference_surface(a, None) is None
    assert landscape.difference_surface(a, fake_surface("b", n=5)) is None
    unavailable = {**b, "attrs": {"unavailable": "diverged before any checkpoint"}}
    assert landscape.difference_surface(a, unavailable) is None


def test_every_seed_has_its_own_style():
    styles = [tuple(sorted((k, str(v)) for k, v in seed_style(k).items() if k in ("ls", "marker"))) for k in range(24)]
    assert len(set(styles)) == len(styles)
    with pytest.raises(ValueError, match="seeds"):
        seed_style(24)


def write_history(path, losses, outcome="finished"):
    epochs = range(len(losses))
    pd.DataFrame({"kind": "epoch", "step": list(epochs), "epoch": list(epochs), "loss": losses,
                  "dice": [1 - v for v in losses], "iou": [1 - v for v in losses], "diverged": False,
                  "outcome": outcome}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", ["seeds", "skips"])
def test_training_figure_styles_seeds_and_colours_conditions(name, drawn, tmp_path):
    spec = study(name)
    paths = [write_history(tmp_path / f"{k}.csv", [0.7, 0.5 - 0.01 * k, 0.4 - 0.01 * k])
             for k, _ in enumerate(spec["runs"])]
    training.plot_training_study(spec, paths, "unused.png")
    (fig,) = drawn
    assert fig.get_figwidth() <= MAX_WIDTH + 0.5
    assert_no_overlap(fig)
    from matplotlib.colors import to_hex

    seeds, optimisers = STUDIES[name][3], STUDIES[name][1]
    for ax in fig.get_axes():
        lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
        if not lines:
            continue
        looks = {(str(line.get_linestyle()), str(line.get_marker())) for line in lines}
        colours = {to_hex(line.get_color()) for line in lines}
        assert len(looks) == len(seeds), "two seeds look alike"
        assert len(colours) == len(optimisers), "two optimisers share a colour"
    columns = {round(ax.get_position().x0, 3) for ax in fig.get_axes() if ax.axison}
    assert len(columns) <= 3


def test_generalisation_figures_name_every_measure_in_words(drawn, monkeypatch):
    from unetscape.analysis.generalisation import MEASURES, generalisation
    from unetscape.plots import generalisation as generalisation_plots

    monkeypatch.setattr(generalisation_plots, "save_figure", lambda fig, *paths: (fig.canvas.draw(), drawn.append(fig)))
    rng = np.random.default_rng(0)
    rows = []
    for run in study("noise")["runs"]:
        arch, optimizer, noise, seed = run.split("/")
        rows.append({"arch": arch, "optimizer": optimizer, "noise": float(noise[5:]), "norm": ARCHS[arch]["norm"],
                     "skip": ARCHS[arch]["skip"], "outcome": "finished", "final_heldout_dice": rng.uniform(0.5, 0.9),
                     "gap_loss": rng.uniform(0, 0.1), **{m: rng.uniform(0, 1) for m in MEASURES}})
    runs = pd.DataFrame(rows)
    table = generalisation(runs, {"level": 0.95, "bootstrap": 50, "seed": 0, "alpha": 0.05})
    generalisation_plots.plot_ranking(table, "unused.png")
    generalisation_plots.plot_measure(runs, table, "relative_lambda_max", "unused.png")
    ranking, measure = drawn
    labels = [t.get_text() for t in ranking.axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(generalisation_plots.measure_words(m) for m in MEASURES)
    assert all(MEASURES[m][0] in generalisation_plots.measure_words(m) for m in MEASURES)
    assert "scale-normalised Hessian" in measure.axes[0].get_xlabel().replace("\n", " ")
