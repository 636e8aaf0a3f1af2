"""The study figures as a reader sees them at the report's width: layout, titles, styles."""

import itertools

import numpy as np
import pandas as pd
import pytest

from unetscape.plots import landscape, metrics, training
from unetscape.plots.style import MAX_COLUMNS, MAX_WIDTH, seed_style, shown_text_px

REPORT = __import__("pathlib").Path(__file__).resolve().parents[1] / "report"

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

    for module in (landscape, training, metrics):
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
    return [ax for ax in fig.get_axes() if getattr(ax, "_colorbar", None) is None and ax.axison and ax.get_title()]


def plt_rc(key):
    import matplotlib

    return matplotlib.rcParams[key]


def smallest_text_px(fig) -> float:
    """The height in CSS pixels of the figure's smallest text as the report shows it: the saved
    figure (150 dpi, tight box) scaled to fit the report's frame."""
    import io

    import matplotlib.text
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    width_inches = Image.open(buffer).size[0] / plt_rc("savefig.dpi")
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    return shown_text_px(min(sizes), width_inches)


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
    rows = [sub for sub in fig.subfigs if sub._suptitle is not None]
    differences = [ax for sub in rows for ax in sub.get_axes() if "difference" in sub._suptitle.get_text()
                   or ax.get_title().startswith("difference")]
    assert len([ax for ax in panels if ax not in differences]) == len(spec["runs"])
    # a tall figure has its colour bars above its panels as well as below
    bars = [ax for ax in fig.get_axes() if getattr(ax, "_colorbar", None) is not None]
    assert len(bars) == (2 if len(rows) > 3 else 1) * (2 if differences else 1)
    assert fig.get_figheight() <= 3 * fig.get_figwidth()  # momentum: 10 rows of 3 were 4.2 times its width
    for sub in fig.subfigs:
        assert len([ax for ax in sub.get_axes() if ax.axison]) <= MAX_COLUMNS
    for ax in panels:
        assert ax.get_xlabel() and ax.get_ylabel(), f"panel {ax.get_title()!r} has no axis labels"
    # colour-bar ticks are round numbers, not contour levels such as 0.0641
    for bar in bars:
        for tick in bar.get_xticklabels():
            assert len(tick.get_text().lstrip("−-").replace(".", "")) <= 3, tick.get_text()


def test_momentum_figure_puts_seeds_side_by_side_a_row_per_optimiser_and_their_difference():
    spec = study("momentum")
    from unetscape.training.tables import parse_run_id

    runs = [parse_run_id(r) for r in spec["runs"]]
    surfaces = {r: fake_surface(r) for r in spec["runs"]}
    rows, factor = landscape.study_rows(spec, runs, [surfaces[r] for r in spec["runs"]])
    assert factor == "optimizer"
    # five seeds, two optimisers: a row per architecture and optimiser, and one for their difference
    assert [heading.split(": ", 1)[1] for heading, _ in rows] == ["sgd", "sgd_momentum",
                                                                  "difference, sgd_momentum minus sgd"] * 2
    assert rows[0][0].startswith("simple U-Net") and rows[3][0].startswith("improved U-Net")
    for heading, row in rows:
        assert [label for label, _ in row] == [f"seed {s}" for s in range(5)]
    for seed in range(5):
        a = surfaces[f"simple/sgd/noise0/seed{seed}"]
        b = surfaces[f"simple/sgd_momentum/noise0/seed{seed}"]
        assert rows[0][1][seed][1] is a and rows[1][1][seed][1] is b
        np.testing.assert_allclose(rows[2][1][seed][1]["train_loss"],
                                   np.asarray(b["train_loss"]) - np.asarray(a["train_loss"]))
    # the seeds study of the same runs compares seeds instead: not the same figure
    seed_rows, seed_factor = landscape.study_rows(study("seeds"), runs, [surfaces[r] for r in spec["runs"]])
    assert seed_factor == "seed" and [label for label, _ in seed_rows[0][1]] == [f"seed {s}" for s in range(5)]
    # a study with as many seeds as levels keeps a row per seed (noise: 3 levels, 3 seeds)
    noise = study("noise")
    noise_rows, _ = landscape.study_rows(noise, [parse_run_id(r) for r in noise["runs"]],
                                         [fake_surface(r) for r in noise["runs"]])
    assert all("seed" in heading for heading, _ in noise_rows)


def test_generalisation_study_rows_name_the_training_set_size_and_learning_rate():
    from unetscape.training.tables import parse_run_id

    runs_ids = [f"simple/sgd_momentum{lr}-n{n}-s2000/noise0/seed{s}" for s in (0, 1) for lr in ("", "-lr0.03")
                for n in (32, 100, 300)]
    spec = {"study": "generalisation", "title": "g", "runs": runs_ids, "archs": {"simple": ARCHS["simple"]}}
    rows, factor = landscape.study_rows(spec, [parse_run_id(r) for r in runs_ids], [fake_surface(r) for r in runs_ids])
    assert factor == "train_size"
    assert [heading for heading, _ in rows] == [f"simple U-Net (no normalisation), {lr}, seed {s}" for s in (0, 1)
                                                for lr in ("default lr", "lr 0.03")]
    assert all([label for label, _ in row] == ["32 images", "100 images", "300 images"] for _, row in rows)


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
    assert sorted(labels) == sorted(generalisation_plots.measure_words(m, 34) for m in MEASURES)
    assert not [label for label in labels if "flatness." in label or "= flatness" in label]  # no config keys
    assert "scale-normalised Hessian" in measure.axes[0].get_xlabel().replace("\n", " ")
    # the legend's markers are the ones the caption names
    handles, names = ranking.legends[0].legend_handles, [t.get_text() for t in ranking.legends[0].get_texts()]
    marker = {name: getattr(h, "get_marker", lambda: None)() for h, name in zip(handles, names)}
    assert marker["pooled tau (mixes conditions)"] == "D" and marker["granulated Psi"] == "s"
    caption = " ".join((REPORT / "generalisation_figure.rst").read_text().split())
    assert "Orange diamonds: the pooled tau" in caption and "orange squares: Jiang et al.'s granulated Psi" in caption
    assert "Circles with bars: the within-condition tau" in caption
    for fig in (ranking, measure):
        assert smallest_text_px(fig) >= 10, "text too small at the report's width"


def test_training_figure_gives_each_learning_rate_of_a_sweep_its_colour(drawn, tmp_path):
    runs = [f"{a}/{o}{lr}-e3/noise0/seed{s}" for a in ("simple", "improved") for o in ("sgd", "sgd_momentum")
            for lr in ("", "-lr0.1", "-lr1") for s in (0, 1)]
    spec = {"study": "stability", "title": "A sweep", "runs": runs, "archs": {a: ARCHS[a] for a in ("simple", "improved")}}
    paths = []
    for k, run in enumerate(runs):
        path = write_history(tmp_path / f"{k}.csv", [0.7, 0.5, 0.4])
        history = pd.read_csv(path).assign(lr=float(run.split("-lr")[1].split("-")[0]) if "-lr" in run else 0.01)
        history.to_csv(path, index=False)
        paths.append(path)
    training.plot_training_study(spec, paths, "unused.png")
    (fig,) = drawn
    from matplotlib.colors import to_hex

    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert names[:6] == ["sgd, lr 0.01", "sgd, lr 0.1", "sgd, lr 1", "sgd_momentum, lr 0.01", "sgd_momentum, lr 0.1",
                         "sgd_momentum, lr 1"]  # the configured lr read from the run's history
    colours = [to_hex(h.get_color()) for h in fig.legends[0].legend_handles[:6]]
    assert len(set(colours)) == 6 and to_hex("grey") not in colours and to_hex((0.5, 0.5, 0.5)) not in colours
    assert smallest_text_px(fig) >= 10


def sweep_conditions():
    rows = []
    for arch in ("simple", "improved"):
        for optimizer in ("sgd", "sgd_momentum"):
            for lr in (0.01, 0.1, 1.0):
                row = {"arch": arch, "optimizer": optimizer, "lr": lr, "noise": 0.0, "n": 3}
                for m in ("probe_largest_rise", "probe_volatility", "eos_lambda_ratio_final", "eos_batch_ratio_final"):
                    row |= {f"{m}_mean": 0.5, f"{m}_ci_low": 0.4, f"{m}_ci_high": 0.6}
                rows.append(row)
    return pd.DataFrame(rows)


def test_metrics_of_a_sweep_tell_every_condition_apart(drawn, tmp_path):
    conditions = sweep_conditions()
    assert metrics.roles(conditions) == ("lr", "optimizer", "arch")
    runs = conditions.assign(outcome="finished", probe_largest_rise=0.5, probe_volatility=0.5,
                             eos_lambda_ratio_final=0.5, eos_batch_ratio_final=0.5)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    conditions.to_csv(tmp_path / "conditions.csv", index=False)
    metrics.plot_study_metrics({"study": "stability", "title": "A sweep"}, tmp_path / "runs.csv",
                               tmp_path / "conditions.csv", "unused.png")
    (fig,) = drawn
    from matplotlib.colors import to_hex

    # every condition has the same mean here: only its position, colour and marker tell it apart
    ax = fig.axes[0]
    points = {(round(float(x), 6), to_hex(line.get_color()), line.get_marker()) for line in ax.get_lines()
              if line.get_marker() in metrics.MARKS for x in line.get_xdata()}
    assert len(points) == len(conditions)
    assert len({x for x, _, _ in points}) == len(conditions)  # not drawn on top of each other either
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.01", "0.1", "1"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"sgd", "sgd_momentum", "simple", "improved"} <= set(legend)
    assert not any("not finished" in t for t in legend)  # no run that did not finish: no such entry
    assert smallest_text_px(fig) >= 10


def test_scale_invariance_rows_are_headed_by_what_their_curves_should_do(drawn, tmp_path):
    import h5py

    from unetscape.landscape.surface_io import write_attrs

    path = tmp_path / "scale.h5"
    x = np.linspace(-1, 1, 9)
    with h5py.File(path, "w") as f:
        f.create_dataset("xcoordinates", data=x)
        f.create_dataset("train_loss", data=np.broadcast_to(0.2 + x**2, (2, 2, 3, 9)).copy())
        write_attrs(f, {"runs": ["simple/sgd/noise0/seed0", "improved/sgd/noise0/seed0"], "norms": ["none", "filter"],
                        "factors": [1.0, 0.5, 2.0]})
    metrics.plot_scale_invariance(path, "unused.png", norms_of={"simple/sgd/noise0/seed0": "none",
                                                                 "improved/sgd/noise0/seed0": "batch"})
    (fig,) = drawn
    headings = [sub._suptitle.get_text() for sub in fig.subfigs]
    assert headings[0].startswith("simple/sgd/noise0/seed0\nCONTROL") and "batch norm: rescaling keeps" in headings[1]
    assert [ax.get_title() for ax in fig.axes] == ["raw Gaussian direction", "filter-normalised direction"] * 2
    # the two panels of a row share its width: the heading no longer pushes one aside
    left, right = fig.axes[0].get_position(), fig.axes[1].get_position()
    assert abs(left.width - right.width) < 0.05
    assert_no_overlap(fig)
    assert smallest_text_px(fig) >= 10


def test_curves_legend_sits_below_each_panel_with_both_barriers(tmp_path, monkeypatch):
    """The paths fill a panel from 0 to 1, so a legend inside it would hide them: each panel's
    legend goes under its axes, one entry per pair of seeds with the line's and the curve's barrier."""
    import h5py
    from unetscape.plots import curves

    t = np.linspace(0, 1, 11)
    pairs = []
    for k in range(2):
        path = tmp_path / f"curve{k}.h5"
        with h5py.File(path, "w") as f:
            f["t"] = t
            f["train_loss"] = 0.1 + 0.01 * k * np.sin(np.pi * t)
            f["line_train_loss"] = 0.1 + (0.5 + k) * np.sin(np.pi * t)
            f.attrs["barrier_line"] = 0.5 + k
            f.attrs["barrier_curve"] = 0.01 * k
        pairs.append((f"simple/sgd/noise0/seed{k}", f"simple/sgd/noise0/seed{k + 1}", str(path)))
    figures = []
    monkeypatch.setattr(curves, "save_figure", lambda fig, *paths: figures.append(fig))
    curves.plot_curves("study", pairs, str(tmp_path / "out.png"))
    (ax,) = [a for a in figures[0].axes if a.get_visible() and a.axison]
    legend = ax.get_legend()
    names = [text.get_text() for text in legend.get_texts()]
    assert names == ["seeds 0-1: line 0.500, curve 0.000", "seeds 1-2: line 1.500, curve 0.010"]
    figures[0].canvas.draw()
    renderer = figures[0].canvas.get_renderer()
    assert legend.get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0  # under the axes
