"""Loss-landscape figures: 2-D surfaces, 1-D curves, trajectories and study panels.

Surfaces are dicts as `unetscape.landscape.read_surface` returns them: `xcoordinates`,
`ycoordinates` and `train_loss[j, i] = L(x[i], y[j])` in meshgrid order (rows are y), which is
what matplotlib's contour and plot_surface take with `np.meshgrid(x, y)`; `_values` reads it
through `surface_array`, which checks that orientation against the coordinates.
"""

from __future__ import annotations

import numpy as np

from unetscape.landscape.surface_io import surface_array

from .labels import loss_label, measured, outcome_note
from .style import plt, save_figure


def shared_levels(surfaces: list[dict], count: int = 15, key: str = "train_loss") -> np.ndarray:
    """Contour levels spanning the finite values of every surface, so panels compare directly."""
    values = np.concatenate([np.ravel(s[key]) for s in surfaces])
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


def unavailable_panel(ax, attrs: dict) -> None:
    ax.axis("off")
    ax.text(0.5, 0.5, "no landscape:\n" + attrs.get("unavailable", "nothing was evaluated"), ha="center",
            va="center", wrap=True, fontsize=8, transform=ax.transAxes)


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
    if "unavailable" in attrs:
        fig, ax = plt.subplots(figsize=(6, 3))
        unavailable_panel(ax, attrs)
        ax.set_title(title)
        save_figure(fig, *out_paths)
        return
    rows = [("train_loss", "training set")] + ([("test_loss", "held-out set")] if "test_loss" in surface else [])
    lv = shared_levels([{"v": np.concatenate([np.ravel(surface[k]) for k, _ in rows])}], levels, key="v")
    fig = plt.figure(figsize=(15, 4.4 * len(rows)), layout="constrained")
    x, y = _grid(surface)
    for r, (key, name) in enumerate(rows):
        ax1 = fig.add_subplot(len(rows), 3, 3 * r + 1)
        draw_contour(ax1, surface, lv, key=key)
        ax1.set_title(f"contours, {name}")
        ax2 = fig.add_subplot(len(rows), 3, 3 * r + 2)
        filled = draw_contour(ax2, surface, lv, filled=True, key=key)
        fig.colorbar(filled, ax=ax2, shrink=0.85, label=f"{loss_label(attrs)} ({name})")
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
    filled = draw_contour(ax, surface, shared_levels([surface], levels), filled=True, equal=False)
    fig.colorbar(filled, ax=ax, shrink=0.9, label=loss_label(surface.get("attrs", {})))
    ax.plot(path[:, 0], path[:, 1], "-o", color="crimson", ms=3.5, lw=1.3, label="training path (checkpoints)")
    for k in (0, len(epochs) - 1):
        ax.annotate(f"epoch {epochs[k]}", path[k], textcoords="offset points", xytext=(4, 4), fontsize=7, color="crimson")
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.1f}% of variance)")
    ax.legend(loc="lower right", fontsize=7, framealpha=0.8)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, *out_paths)


def plot_panels(panels: list[list[tuple[str, dict | None]]], title: str, *out_paths, levels: int = 15) -> None:
    """A grid of filled-contour panels (rows × columns of (label, surface)) on ONE colour scale.

    All panels share the same contour levels, so a colour means the same loss everywhere.
    A `None` surface leaves its panel empty (e.g. a run that diverged before any checkpoint).
    """
    surfaces = [s for row in panels for _, s in row if s is not None and "unavailable" not in s.get("attrs", {})]
    lv = shared_levels(surfaces, levels)
    n_rows, n_cols = len(panels), max(len(row) for row in panels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.3 * n_cols + 1.2, 3.3 * n_rows), squeeze=False,
                             layout="constrained")
    artist = None
    for r, row in enumerate(panels):
        for c in range(n_cols):
            ax = axes[r][c]
            if c >= len(row):
                ax.axis("off")
                continue
            label, surface = row[c]
            attrs = {} if surface is None else surface.get("attrs", {})
            note = outcome_note(attrs)
            ax.set_title(label + (f"\n{note.strip()}" if note else ""), fontsize=8 if note else 9,
                         color="crimson" if note else "black")
            if surface is None or "unavailable" in attrs:
                unavailable_panel(ax, attrs)
                continue
            artist = draw_contour(ax, surface, lv, filled=True)
            ax.contour(*_grid(surface), _values(surface), levels=lv,
                       colors="k", linewidths=0.3, alpha=0.5)
    if artist is not None:
        labels = {loss_label(s.get("attrs", {})) for row in panels for _, s in row if s is not None}
        fig.colorbar(artist, ax=axes, shrink=0.8, label=f"{' / '.join(sorted(labels))} (shared scale)")
    fig.suptitle(title)
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
    if "unavailable" not in line["attrs"] and "unavailable" in interp["attrs"]:
        unavailable_panel(ax2, interp["attrs"])  # e.g. a model trained elsewhere: no initial weights
    elif "unavailable" not in line["attrs"]:
        ax2.plot(interp["t"], interp["train_loss"], "-o", ms=3, color="tab:orange")
        for position, name in ((0, "initial"), (1, words)):
            ax2.axvline(position, color="grey", ls=":", lw=1)
            ax2.annotate(name, (position, 1), xycoords=("data", "axes fraction"), fontsize=7, ha="center",
                         va="bottom")
        ax2.set_xlabel(f"t  (theta = (1 - t) initial + t {words}; BN statistics: {interp['attrs'].get('bn', '?')})")
        ax2.set_title(f"interpolation from the initial weights to the {words}", pad=12, fontsize=10)
        _nan_note(ax2, interp["t"], interp["train_loss"])
    if "unavailable" not in line["attrs"]:
        for ax in (ax1, ax2) if "unavailable" not in interp["attrs"] else (ax1,):
            ax.set_ylabel(loss_label(line["attrs"]))
            if log_scale:
                ax.set_yscale("log")
    fig.suptitle(run + outcome_note(line["attrs"]))
    save_figure(fig, outputs.lines)

    pca = _read(inputs.trajectory)
    attrs = pca["attrs"]
    if "unavailable" in attrs:
        fig, ax = plt.subplots(figsize=(5.4, 4.6))
        unavailable_panel(ax, attrs)
        ax.set_title(f"{run}: training path" + outcome_note(attrs))
        save_figure(fig, outputs.trajectory)
        return
    path = np.column_stack([attrs["path_x"], attrs["path_y"]])
    plot_trajectory(pca, path, attrs["path_epochs"], attrs["explained_variance_ratio"],
                    f"{run}: training path on its PCA plane{outcome_note(attrs)}", outputs.trajectory,
                    levels=levels)


def _columns(runs: list[dict]) -> list[str]:
    """Run fields other than the architecture that vary within a study (panel columns)."""
    return [k for k in ("optimizer", "noise", "seed") if len({r[k] for r in runs}) > 1]


def _column_label(run: dict, fields: list[str]) -> str:
    names = {"optimizer": lambda r: r["optimizer"], "noise": lambda r: f"noise {r['noise']:g}",
             "seed": lambda r: f"seed {r['seed']}"}
    return ", ".join(names[f](run) for f in fields) or run["optimizer"]


def plot_study_surfaces(study: dict, surface_paths: list, levels: int, *out_paths) -> None:
    """Rows = architectures, columns = the study's other factors; one shared colour scale."""
    from unetscape.training.tables import parse_run_id

    from .style import arch_label

    runs = [parse_run_id(r) for r in study["runs"]]
    fields = _columns(runs)
    by_arch: dict[str, list] = {arch: [] for arch in study["archs"]}
    for run, path in zip(runs, surface_paths):
        by_arch[run["arch"]].append((_column_label(run, fields), _read(path)))
    panels = [[(f"{arch_label(arch, study['archs'][arch])}\n{label}", s) for label, s in row]
              for arch, row in by_arch.items()]
    plot_panels(panels, f"{study['title']}: Dice loss on random filter-normalised planes", *out_paths, levels=levels)


def plot_study_interpolations(study: dict, init_paths: list, pair_labels: list, pair_paths: list,
                              log_scale: bool, *out_paths) -> None:
    """Left: initial -> final weights of every run; right: final weights of seed a -> seed b."""
    from unetscape.training.tables import parse_run_id

    runs = [parse_run_id(r) for r in study["runs"]]
    fields = _columns(runs)
    n_panels = 2 if pair_paths else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(6.2 * n_panels, 4), squeeze=False)
    archs = list(study["archs"])
    colours = dict(zip(archs, plt.cm.tab10.colors))
    styles = ["-", "--", ":", "-."]
    labels = sorted({_column_label(r, fields) for r in runs})
    ax = axes[0][0]
    missing = []
    for run, path in zip(runs, init_paths):
        curve = _read_curve(path)
        label = _column_label(run, fields)
        note = outcome_note(curve["attrs"])
        if not np.isfinite(curve["train_loss"]).any():
            missing.append(f"{run['arch']}, {label}{note}")
            continue
        ax.plot(curve["t"], curve["train_loss"], styles[labels.index(label) % 4], color=colours[run["arch"]],
                lw=1.3 if not note else 0.8, alpha=1 if not note else 0.6, label=f"{run['arch']}, {label}{note}")
    ax.set_title("initial (t=0) to measured (t=1) weights")
    if pair_paths:
        ax = axes[0][1]
        for label, path in zip(pair_labels, pair_paths):
            curve = _read_curve(path)
            arch = label.split("/")[0]
            if not np.isfinite(curve["train_loss"]).any():
                missing.append(label)
                continue
            ax.plot(curve["t"], curve["train_loss"], "-", color=colours.get(arch, "k"), lw=1.3,
                    label=label.replace("/noise0", "").replace("/", " "))
        ax.set_title("final weights of one seed (t=0) to the next (t=1)")
    if missing:
        fig.text(0.01, -0.02, "no curve (no trained weights): " + "; ".join(missing), fontsize=7, color="crimson",
                 ha="left", va="top", wrap=True)
    for ax in axes[0]:
        for position in (0, 1):
            ax.axvline(position, color="grey", ls=":", lw=1)
        ax.set_xlabel("t")
        ax.set_ylabel("Dice loss")
        if log_scale:
            ax.set_yscale("log")
        # Below the panel: a legend of up to 20 curves inside it hid the curves.
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    fig.suptitle(f"{study['title']}: linear interpolations")
    fig.tight_layout()
    save_figure(fig, *out_paths)
