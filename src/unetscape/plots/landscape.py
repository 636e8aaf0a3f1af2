"""Loss-landscape figures: 2-D surfaces, 1-D curves, trajectories and study panels.

Surfaces are dicts as `unetscape.landscape.read_surface` returns them: `xcoordinates`,
`ycoordinates` and `train_loss[j, i] = L(x[i], y[j])` in meshgrid order (rows are y), which is
what matplotlib's contour and plot_surface take with `np.meshgrid(x, y)`; `_values` reads it
through `surface_array`, which checks that orientation against the coordinates.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.ticker import MaxNLocator

from unetscape.landscape.surface_io import surface_array

from .labels import loss_label, measured, outcome_note
from .no_data import say_why
from .style import MAX_COLUMNS, MAX_WIDTH, plt, round_ticks, save_figure


def shared_levels(surfaces: list[dict], count: int = 15, key: str = "train_loss") -> np.ndarray:
    """Contour levels spanning the finite values of every surface, so panels compare directly."""
    values = np.concatenate([np.ravel(s[key]) for s in surfaces] + [np.empty(0)])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.linspace(0, 1, count)
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        high = low + 1e-6
    return np.linspace(low, high, count)


def _grid(surface: dict):
    return np.meshgrid(surface["xcoordinates"], surface["ycoordinates"])


def _values(surface: dict, name: str = "train_loss"):
    """Rows = y, columns = x, unevaluated points masked."""
    return np.ma.masked_invalid(surface_array(surface, name, order="yx"))


def nothing_to_draw(surface: dict | None) -> bool:
    """A surface without trained weights (`unavailable`), or without one finite loss."""
    if surface is None or "unavailable" in surface.get("attrs", {}):
        return True
    return not np.isfinite(np.asarray(surface["train_loss"], dtype=np.float64)).any()


def unavailable_panel(ax, attrs: dict) -> None:
    say_why(ax, "no landscape:\n" + attrs.get("unavailable", "no finite Dice loss at any point evaluated"))


def draw_contour(ax, surface: dict, levels, filled: bool = False, labels: bool = True, equal: bool = True,
                 key: str = "train_loss"):
    x, y = _grid(surface)
    z = _values(surface, key)
    if filled:
        artist = ax.contourf(x, y, z, levels=levels, cmap="viridis", extend="both")
    else:
        artist = ax.contour(x, y, z, levels=levels, cmap="viridis", linewidths=0.9)
        if labels:
            ax.clabel(artist, levels=artist.levels[::2], inline=True, fontsize=7, fmt="%.3f")
    marker, words = measured(surface.get("attrs", {}))
    ax.plot(0, 0, marker=marker, color="white" if filled else "black", ms=8 if marker == "*" else 7, mec="black",
            mew=0.5, ls="", label=words)
    if equal:
        ax.set_aspect("equal", adjustable="box")
    return artist


def plot_surface_views(surface: dict, title: str, *out_paths, levels: int = 15) -> None:
    """One run, one plane: labelled contours, filled contours and a 3-D view side by side; a
    second row the same on the held-out set when the surface has it, on the same levels and
    colour scale as the training row."""
    attrs = surface.get("attrs", {})
    title += outcome_note(attrs)
    if nothing_to_draw(surface):
        fig, ax = plt.subplots(figsize=(6, 3))
        unavailable_panel(ax, attrs)
        ax.set_title(title)
        save_figure(fig, *out_paths)
        return
    rows = [("train_loss", "training set")] + ([("test_loss", "held-out set")] if "test_loss" in surface else [])
    lv = shared_levels([{"v": np.concatenate([np.ravel(surface[k]) for k, _ in rows])}], levels, key="v")
    fig = plt.figure(figsize=(MAX_WIDTH, 3.4 * len(rows)), layout="constrained")
    x, y = _grid(surface)
    for r, (key, name) in enumerate(rows):
        ax1 = fig.add_subplot(len(rows), 3, 3 * r + 1)
        draw_contour(ax1, surface, lv, key=key)
        ax1.set_title(f"contours, {name}")
        ax2 = fig.add_subplot(len(rows), 3, 3 * r + 2)
        filled = draw_contour(ax2, surface, lv, filled=True, key=key)
        round_ticks(fig.colorbar(filled, ax=ax2, shrink=0.85, label=f"{loss_label(attrs)} ({name})"), lv[0], lv[-1])
        ax2.set_title(f"filled contours, {name}")
        ax3 = fig.add_subplot(len(rows), 3, 3 * r + 3, projection="3d")
        ax3.plot_surface(x, y, _values(surface, key), cmap="viridis", linewidth=0, vmin=lv[0], vmax=lv[-1])
        ax3.set_zlim(lv[0], lv[-1])
        ax3.set_zlabel(loss_label(attrs))
        ax3.set_title(f"surface, {name}")
        for ax in (ax1, ax2, ax3):
            ax.set_xlabel("x (direction 1)")
            ax.set_ylabel("y (direction 2)")
        if r == 0:
            ax1.legend(loc="upper right", fontsize=7, framealpha=0.8)
    fig.suptitle(title + (" — training and held-out images, one colour scale" if len(rows) > 1 else ""))
    save_figure(fig, *out_paths)


def plot_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, xlabel: str, *out_paths,
                log_scale: bool = False, marks: dict[str, float] | None = None) -> None:
    """1-D loss curves, one line per label; `marks` draws vertical lines (e.g. t=0 and t=1)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    colours = plt.cm.viridis(np.linspace(0, 0.85, max(len(curves), 1)))
    for colour, (label, (t, loss)) in zip(colours, curves.items()):
        ax.plot(t, loss, "-", color=colour, lw=1.5, label=label)
    for name, position in (marks or {}).items():
        ax.axvline(position, color="grey", ls=":", lw=1)
        ax.annotate(name, (position, 1), xycoords=("data", "axes fraction"), fontsize=7, ha="center", va="bottom")
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Dice loss")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    save_figure(fig, *out_paths)


def plot_trajectory(surface: dict, path: np.ndarray, epochs: list[int], explained: list[float], title: str,
                    *out_paths, levels: int = 15) -> None:
    """The optimiser's path (checkpoints projected on the PCA plane) over that plane's surface.

    The axes keep their own scales (PC 1 usually spans far more than PC 2, and equal axes
    would squash the plot to a strip); the title goes above the figure, not over the colour bar.
    """
    fig, ax = plt.subplots(figsize=(6.4, 5.0), layout="constrained")
    lv = shared_levels([surface], levels)
    filled = draw_contour(ax, surface, lv, filled=True, equal=False)
    round_ticks(fig.colorbar(filled, ax=ax, shrink=0.9, label=loss_label(surface.get("attrs", {}))), lv[0], lv[-1])
    ax.plot(path[:, 0], path[:, 1], "-o", color="crimson", ms=3.5, lw=1.3, label="training path (checkpoints)")
    for k in (0, len(epochs) - 1):
        ax.annotate(f"epoch {epochs[k]}", path[k], textcoords="offset points", xytext=(4, 4), fontsize=7, color="crimson")
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.1f}% of variance)")
    ax.legend(loc="lower right", fontsize=7, framealpha=0.8)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, *out_paths)


def _measurable(surface: dict | None) -> bool:
    return not nothing_to_draw(surface)


def difference_surface(a: dict | None, b: dict | None) -> dict | None:
    """b - a point by point when both surfaces have values on the same grid (the same
    filter-normalised coordinates around each run's own weights), else None."""
    if not (_measurable(a) and _measurable(b)):
        return None
    if not (np.array_equal(a["xcoordinates"], b["xcoordinates"])
            and np.array_equal(a["ycoordinates"], b["ycoordinates"])):
        return None
    diff = surface_array(b, "train_loss", order="yx") - surface_array(a, "train_loss", order="yx")
    if not np.isfinite(diff).any():
        return None
    return {"xcoordinates": a["xcoordinates"], "ycoordinates": a["ycoordinates"], "train_loss": diff,
            "attrs": {"difference": True}}


def plot_panels(rows: list[tuple[str, list[tuple[str, dict | None]]]], title: str, *out_paths, levels: int = 15,
                note: str = "") -> None:
    """Rows of filled-contour panels, each row under its own heading, on ONE colour scale.

    `rows`: (heading, [(panel title, surface)]); a row of more than MAX_COLUMNS panels wraps.
    All loss panels share the same contour levels, so a colour means the same loss everywhere;
    a surface whose attrs say `difference` is drawn on a second, diverging scale centred on 0.
    A `None` surface leaves its panel empty (e.g. a run that diverged before any checkpoint).
    Every panel has its axis labels; headings and titles stay short so they never collide.
    """
    from matplotlib.colors import TwoSlopeNorm

    surfaces = [s for _, row in rows for _, s in row if _measurable(s) and "difference" not in s["attrs"]]
    lv = shared_levels(surfaces, levels)
    diffs = [s for _, row in rows for _, s in row if s is not None and s.get("attrs", {}).get("difference")]
    span = max([float(np.nanmax(np.abs(s["train_loss"]))) for s in diffs] or [1.0]) or 1e-6
    diff_levels = np.linspace(-span, span, levels)
    lines = [(heading if k == 0 else f"{heading} (continued)", row[k:k + MAX_COLUMNS])
             for heading, row in rows for k in range(0, max(len(row), 1), MAX_COLUMNS)]
    n_cols = max(len(row) for _, row in lines)
    side = min(2.25, (MAX_WIDTH - 0.4) / n_cols)
    # a figure taller than a window or two has its colour bars above its panels too
    top = len(lines) > 3
    heights = [0.9] * top + [side + 0.75] * len(lines) + [0.9]
    fig = plt.figure(figsize=(side * n_cols + 0.4, sum(heights) + 0.6), layout="constrained")
    parts = fig.subfigures(len(heights), 1, height_ratios=heights)
    artist = diff_artist = None
    for part, (heading, row) in zip(parts[top:], lines):
        part.suptitle(heading, fontsize=9, fontweight="bold", x=0.01, ha="left")
        axes = part.subplots(1, n_cols, squeeze=False)[0]
        for c, ax in enumerate(axes):
            if c >= len(row):
                ax.axis("off")
                continue
            label, surface = row[c]
            attrs = {} if surface is None else surface.get("attrs", {})
            # the outcome alone: the full note ("[collapsed: final weights, ...]") ran into its neighbours
            outcome = attrs.get("outcome", "finished")
            note_text = "" if outcome == "finished" or attrs.get("difference") else f"({outcome.replace('_', ' ')})"
            ax.set_title(label + (f"\n{note_text}" if note_text else ""), fontsize=8,
                         color="crimson" if note_text else "black")
            ax.grid(False)
            if not _measurable(surface):
                unavailable_panel(ax, attrs)
                continue
            if attrs.get("difference"):
                x, y = _grid(surface)
                diff_artist = ax.contourf(x, y, _values(surface), levels=diff_levels, cmap="RdBu_r",
                                          norm=TwoSlopeNorm(0.0, -span, span), extend="both")
                ax.set_aspect("equal", adjustable="box")
            else:
                artist = draw_contour(ax, surface, lv, filled=True)
                ax.contour(*_grid(surface), _values(surface), levels=lv, colors="k", linewidths=0.3, alpha=0.5)
            ax.set_xlabel("x (direction 1)", fontsize=7, labelpad=1)
            ax.set_ylabel("y (direction 2)", fontsize=7, labelpad=1)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.yaxis.set_major_locator(MaxNLocator(4))
    if artist is None:
        # not one panel drawn: say why over the whole figure too
        from unetscape.training.outcome_words import no_finished_run

        outcomes = [(s or {}).get("attrs", {}).get("outcome", "no surface") for _, row in rows for _, s in row]
        if "finished" not in outcomes:
            note = (note + "\n" if note else "") + no_finished_run(outcomes)
    names = sorted({loss_label(s.get("attrs", {})) for _, row in rows for _, s in row if s is not None})
    for part in [parts[0]] * top + [parts[-1]]:
        bars = part.subplots(1, 2, squeeze=False)[0]
        if artist is not None:
            bar = fig.colorbar(artist, cax=bars[0], orientation="horizontal")
            bar.set_label(f"{' / '.join(names)} (one scale for every loss panel)", fontsize=8)
            round_ticks(bar, lv[0], lv[-1])
        else:
            bars[0].remove()  # no scale of nothing
        if diff_artist is not None:
            bar = fig.colorbar(diff_artist, cax=bars[1], orientation="horizontal")
            bar.set_label("difference of the loss at the same coordinates", fontsize=8)
            round_ticks(bar, -span, span)
        else:
            bars[1].remove()
        for bar_ax in bars:
            bar_ax.set_box_aspect(0.08)
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=10)
    save_figure(fig, *out_paths)


# --- what the figure rules draw -------------------------------------------------------------


def _read(path):
    from unetscape.landscape.surface_io import read_surface

    return read_surface(path)


def _read_curve(path) -> dict:
    import h5py

    from unetscape.landscape.surface_io import read_attrs

    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f} | {"attrs": read_attrs(f)}


def _nan_note(ax, t: np.ndarray, loss: np.ndarray) -> None:
    """Say where a curve is not finite instead of letting it stop without a word."""
    bad = ~np.isfinite(loss)
    if bad.any() and (~bad).any():
        ax.annotate(f"not finite at {int(bad.sum())} of {len(t)} points", (0.02, 0.02), xycoords="axes fraction",
                    fontsize=7, color="crimson")


def plot_run_figures(run: str, inputs, outputs, levels: int, log_scale: bool) -> None:
    """The three figures of one run: surface views, 1-D curves and the PCA trajectory."""
    surface = _read(inputs.surface)
    plot_surface_views(surface, f"{run}: random filter-normalised plane", outputs.surface,
                       levels=levels)

    line = _read(inputs.line)
    interp = _read_curve(inputs.interpolation)
    marker, words = measured(line["attrs"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    if "unavailable" in line["attrs"]:
        unavailable_panel(ax1, line["attrs"])
        unavailable_panel(ax2, line["attrs"])
    else:
        ax1.plot(line["xcoordinates"], line["train_loss"], "-o", ms=3, color="tab:blue")
        origin = int(np.argmin(np.abs(line["xcoordinates"])))
        ax1.plot(0, line["train_loss"][origin], marker, color="black", ms=9, ls="", label=words)
        ax1.legend(fontsize=7, loc="upper center")
        ax1.set_xlabel("step along the filter-normalised direction")
        ax1.set_title(f"1-D slice through the {words}", fontsize=10)
        _nan_note(ax1, line["xcoordinates"], line["train_loss"])
        if not np.isfinite(line["train_loss"]).any():
            say_why(ax1, "no finite Dice loss at any point of this line")
        ax2.plot(interp["t"], interp["train_loss"], "-o", ms=3, color="tab:orange")
        for position, name in ((0, "initial"), (1, words)):
            ax2.axvline(position, color="grey", ls=":", lw=1)
            ax2.annotate(name, (position, 1), xycoords=("data", "axes fraction"), fontsize=7, ha="center",
                         va="bottom")
        bn = "" if interp["attrs"].get("batch_norm") is False else f"; BN statistics: {interp['attrs'].get('bn', '?')}"
        ax2.set_xlabel(f"t  (theta = (1 - t) initial + t {words}{bn})")
        ax2.set_title(f"interpolation from the initial weights to the {words}", pad=12, fontsize=10)
        _nan_note(ax2, interp["t"], interp["train_loss"])
        if not np.isfinite(interp["train_loss"]).any():
            reason = interp["attrs"].get("unavailable", "no finite Dice loss at any point of this path")
            say_why(ax2, f"no curve:\n{reason}")
        for ax in (ax1, ax2):
            ax.set_ylabel(loss_label(line["attrs"]))
            if log_scale:
                ax.set_yscale("log")
    fig.suptitle(run + outcome_note(line["attrs"]))
    save_figure(fig, outputs.lines)

    pca = _read(inputs.trajectory)
    attrs = pca["attrs"]
    if nothing_to_draw(pca):
        fig, ax = plt.subplots(figsize=(5.4, 4.6))
        unavailable_panel(ax, attrs)
        ax.set_title(f"{run}: training path" + outcome_note(attrs))
        save_figure(fig, outputs.trajectory)
        return
    path = np.column_stack([attrs["path_x"], attrs["path_y"]])
    plot_trajectory(pca, path, attrs["path_epochs"], attrs["explained_variance_ratio"],
                    f"{run}: training path on its PCA plane{outcome_note(attrs)}", outputs.trajectory,
                    levels=levels)


# The factor each of the poster's studies asks about: its levels go side by side in a row, the
# runs that differ only in it. Any other study puts its seeds side by side if it has several.
STUDY_QUESTION = {"seeds": "seed", "momentum": "optimizer", "noise": "noise", "skips": "skip",
                  "generalisation": "train_size"}
FACTORS = ("seed", "optimizer", "noise", "skip", "train_size", "lr", "batch_size")


def _varies(runs: list[dict], factor: str) -> bool:
    return len({r.get(factor) for r in runs}) > 1


def compared_factor(study: dict, runs: list[dict]) -> str:
    """The factor whose levels a study's landscape figure puts side by side."""
    varying = [f for f in FACTORS if _varies(runs, f)]
    wanted = STUDY_QUESTION.get(study.get("study", ""))
    if wanted in varying:
        return wanted
    return varying[0] if varying else "seed"


def _seeds_across(rows: list, runs_of_row: list[dict], factor: str) -> list:
    """The same panels with the seeds side by side: a row per level of the compared factor (and
    one for their difference) within each group of rows that differ only in their seed. Fewer,
    wider rows when a study has more seeds than levels (momentum: 5 seeds, 2 optimisers)."""
    groups: dict[str, list] = {}
    for (heading, row), run in zip(rows, runs_of_row):
        shared = heading.removesuffix(f", seed {run['seed']}").removesuffix(f"seed {run['seed']}").rstrip(", ")
        groups.setdefault(shared, []).append((run["seed"], row))
    out = []
    for shared, members in groups.items():
        prefix = f"{shared}: " if shared else ""
        for j, (label, _) in enumerate(members[0][1]):
            words = label.replace("\n", " ")
            heading = prefix + (words if j < len(members[0][1]) - 1 or not words.startswith("difference")
                                else words.replace("difference: ", "difference, "))
            out.append((heading, [(f"seed {seed}", row[j][1]) for seed, row in members]))
    return out


def study_rows(study: dict, runs: list[dict], surfaces: list) -> tuple[list, str]:
    """(rows, factor): the study's runs grouped into rows of runs that differ only in the compared
    factor, each row headed by what its runs share; with two levels of a treatment (not two seeds), a
    last panel shows their difference (second minus first). When a study has more seeds than a
    row has panels, the seeds go side by side instead (`_seeds_across`)."""
    from .style import arch_label

    from unetscape.models.spec import arch_factors

    archs = study["archs"]
    for run in runs:  # "n/a" for networks other than the built-in U-Net
        factors = arch_factors(archs[run["arch"]])
        run["norm"], run["skip"] = factors["norm"], factors["skip"]
    factor = compared_factor(study, runs)
    # comparing skips, the rows are the normalisation; otherwise the architecture is shared by a row
    shared = ["norm" if factor == "skip" else "arch"] + [f for f in FACTORS[1:] + ("seed",) if f != factor]
    shared = [f for f in dict.fromkeys(shared) if f in ("arch", "norm") or _varies(runs, f)]
    words = {
        "arch": lambda r: arch_label(r["arch"], archs[r["arch"]]),
        "norm": lambda r: {"batch": "U-Nets with batch norm", "none": "U-Nets without normalisation"}.get(
            r["norm"], "networks other than the built-in U-Net"),
        "optimizer": lambda r: r["optimizer"],
        "noise": lambda r: f"noise {r['noise']:g}",
        "seed": lambda r: f"seed {r['seed']}",
        "skip": lambda r: f"skip {r['skip']}",
        "lr": lambda r: "default lr" if r.get("lr") is None else f"lr {r['lr']:g}",
        "train_size": lambda r: "all training images" if r.get("train_size") is None else f"{r['train_size']} images",
        "batch_size": lambda r: "default batch" if r.get("batch_size") is None else f"batch {r['batch_size']}",
    }
    rows: dict[tuple, list] = {}
    headings: dict[tuple, str] = {}
    first_run: dict[tuple, dict] = {}
    for run, surface in zip(runs, surfaces):
        key = tuple(run.get(f) for f in shared)
        headings[key] = ", ".join(words[f](run) for f in shared)
        first_run.setdefault(key, run)
        rows.setdefault(key, []).append((words[factor](run), surface))
    out = []
    for key, row in rows.items():
        if len(row) == 2 and factor != "seed":  # two seeds are two draws, not two treatments
            diff = difference_surface(row[0][1], row[1][1])
            title = "difference:\n" + textwrap.fill(f"{row[1][0]} minus {row[0][0]}", 24)
            row = row + [(title, diff if diff is not None else
                          {"attrs": {"unavailable": "no difference: a surface is missing"}})]
        out.append((headings[key], row))
    seeds = {r["seed"] for r in runs}
    if factor != "seed" and "seed" in shared and out and len(seeds) > max(len(row) for _, row in out):
        out = _seeds_across(out, [first_run[k] for k in rows], factor)
    return out, factor


def plot_study_surfaces(study: dict, surface_paths: list, levels: int, *out_paths) -> None:
    """A row per group of runs that differ only in the factor the study asks about (seeds side by
    side for `seeds`, optimisers for `momentum`, noise levels for `noise`, skip variants for
    `skips`, training-set sizes for `generalisation`), or, with more seeds than that, a row per
    level with the seeds side by side; one shared colour scale, and the difference where two
    levels are compared."""
    from unetscape.training.tables import parse_run_id

    runs = [parse_run_id(r) for r in study["runs"]]
    rows, factor = study_rows(study, runs, [_read(p) for p in surface_paths])
    names = {"seed": "seeds", "optimizer": "optimisers", "noise": "noise levels", "skip": "skip connections",
             "train_size": "training-set sizes", "lr": "learning rates", "batch_size": "batch sizes"}
    across = rows and all(label.startswith("seed ") for label, _ in rows[0][1]) and factor != "seed"
    side = f"seeds side by side, a row per {names[factor][:-1]}" if across else f"{names[factor]} side by side"
    plot_panels(rows, f"{study['title']}: Dice loss on random filter-normalised planes,\n{side}", *out_paths,
                levels=levels)


def _curve_outcomes(attrs: dict) -> list[str]:
    """The outcomes of the run(s) a curve joins: both ends of a seed pair, or the run's own."""
    if "outcome_a" in attrs:
        return [attrs["outcome_a"], attrs["outcome_b"]]
    return [attrs.get("outcome", "unmeasured" if "unavailable" in attrs else "finished")]


def plot_study_interpolations(study: dict, init_paths: list, pair_labels: list, pair_paths: list,
                              log_scale: bool, *out_paths) -> None:
    """One panel per architecture: top, initial -> final weights of every run; below, where the
    study has several seeds, final weights of seed a -> seed b. Colours are conditions
    (optimiser and/or noise level), line styles seeds, the legends below the panels. A panel
    without one curve (no run with trained weights) says why."""
    from unetscape.training.outcome_words import outcome_counts
    from unetscape.training.tables import parse_run_id

    from .style import arch_label, seed_style
    from .training import condition_colours, condition_label, panel_title, varying_factors

    runs = [parse_run_id(r) for r in study["runs"]]
    varying = varying_factors(runs)
    conditions = list(dict.fromkeys(condition_label(r, varying) for r in runs))
    colours = condition_colours(conditions)
    seeds = sorted({r["seed"] for r in runs})
    archs = list(study["archs"])
    blocks = [("initial (t = 0) to measured (t = 1) weights", [(r, p) for r, p in zip(runs, init_paths)])]
    if pair_paths:
        pairs = [(parse_run_id(label.split(" -> ")[0]), path) for label, path in zip(pair_labels, pair_paths)]
        blocks.append(("final weights of one seed (t = 0) to the next seed's (t = 1);\nline style: the first seed",
                       pairs))
    n_cols = min(len(archs), 3)
    rows_per_block = -(-len(archs) // n_cols)
    width = min(MAX_WIDTH, 3.5 * n_cols + 0.5)
    fig, axes = plt.subplots(rows_per_block * len(blocks), n_cols, figsize=(width, 2.9 * rows_per_block * len(blocks) + 1.2),
                             squeeze=False, layout="constrained")
    missing, faint = [], False
    for b, (what, entries) in enumerate(blocks):
        for k, arch in enumerate(archs):
            ax = axes[b * rows_per_block + k // n_cols][k % n_cols]
            outcomes, drawn, loss_name = [], 0, "Dice loss"
            for run, path in entries:
                if run["arch"] != arch:
                    continue
                curve = _read_curve(path)
                outcomes += _curve_outcomes(curve["attrs"])
                loss_name = loss_label(curve["attrs"])
                label = condition_label(run, varying)
                note = outcome_note(curve["attrs"])
                if not np.isfinite(curve["train_loss"]).any():
                    missing.append(f"{run['arch']}, {label}, seed {run['seed']}{note}")
                    continue
                ax.plot(curve["t"], curve["train_loss"], color=colours[label], lw=1.3 if not note else 0.8,
                        alpha=1 if not note else 0.6, **seed_style(seeds.index(run["seed"])))
                faint |= bool(note)
                drawn += 1
            ax.set_title(f"{panel_title(arch_label(arch, study['archs'][arch]), 40)}\n{what}", fontsize=8)
            if not drawn:
                say_why(ax, f"no curve: none has a finite loss ({outcome_counts(outcomes)})", fontsize=8,
                        color="crimson")
                continue
            for position in (0, 1):
                ax.axvline(position, color="grey", ls=":", lw=1)
            ax.set_xlabel("t", fontsize=8)
            ax.set_ylabel(loss_name, fontsize=8)
            ax.tick_params(labelsize=7)
            if log_scale:
                ax.set_yscale("log")
        for k in range(len(archs), rows_per_block * n_cols):
            axes[b * rows_per_block + k // n_cols][k % n_cols].axis("off")
    handles = [plt.Line2D([], [], color=colours[c], lw=2, label=c) for c in conditions]
    if len(seeds) > 1:
        handles += [plt.Line2D([], [], color="grey", label=f"seed {s}", **seed_style(i)) for i, s in enumerate(seeds)]
    if faint:
        handles.append(plt.Line2D([], [], color="grey", lw=0.8, alpha=0.6, label="run not finished (thin, faint)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False, fontsize=8)
    title = f"{study['title']}: linear interpolations"
    if missing:
        title += "\nno curve (no trained weights): " + "; ".join(missing)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, *out_paths)
