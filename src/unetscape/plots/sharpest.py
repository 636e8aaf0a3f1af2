"""Figure: one run's random view and its sharpest view side by side, with their basins.

The random plane (filter-normalised, Li et al. 2018) and the plane of the two sharpest
eigenvectors of the scale-normalised Hessian (mapped back as |w| (.) v), each as filled contours,
and below each the persistence diagram of its sublevel sets (its basins and where they merge)."""

from __future__ import annotations

import numpy as np

from unetscape.landscape.surface_io import read_surface, surface_array
from unetscape.measures.topology import persistence_metrics, sublevel_persistence

from .labels import loss_label, outcome_note
from .landscape import draw_contour, nothing_to_draw, shared_levels, unavailable_panel
from .style import MAX_WIDTH, plt, round_ticks, save_figure
from .topology import draw_persistence_diagram


def _eigen_axis_words(attrs: dict) -> tuple[str, str]:
    values = attrs.get("eigenvalues_relative") or []
    words = []
    for k, name in enumerate(("x", "y")):
        value = f" (relative eigenvalue {values[k]:.3g})" if len(values) > k else ""
        words.append(f"{name}: eigenvector {k + 1}{value}")
    return words[0], words[1]


def plot_sharpest_view(run: str, random_path, eigen_path, threshold: float, *out_paths, levels: int = 15) -> None:
    """Top: filled contours of the random plane and of the eigenvector plane (each on its own
    colour scale: the eigenvector plane rises within a few hundredths); bottom: each surface's
    persistence diagram, with its basin count (persistence above `threshold` x its range)."""
    views = (("random filter-normalised plane", read_surface(random_path)),
             ("plane of the two sharpest directions", read_surface(eigen_path)))
    fig, axes = plt.subplots(2, 2, figsize=(min(MAX_WIDTH, 9.0), 8.2),
                             gridspec_kw={"height_ratios": [1.25, 1.0]}, layout="constrained")
    for col, (name, surface) in enumerate(views):
        top, bottom = axes[0, col], axes[1, col]
        attrs = surface.get("attrs", {})
        if nothing_to_draw(surface):
            unavailable_panel(top, attrs)
            top.set_title(name, fontsize=9)
            bottom.axis("off")
            continue
        lv = shared_levels([surface], levels)
        filled = draw_contour(top, surface, lv, filled=True, equal=col == 0)
        round_ticks(fig.colorbar(filled, ax=top, shrink=0.85, label=loss_label(attrs)), lv[0], lv[-1])
        top.set_title(name, fontsize=9)
        if col == 0:
            top.set_xlabel("x (random direction 1)", fontsize=8)
            top.set_ylabel("y (random direction 2)", fontsize=8)
        else:
            xlabel, ylabel = _eigen_axis_words(attrs)
            top.set_xlabel(xlabel, fontsize=8)
            top.set_ylabel(ylabel, fontsize=8)
        top.tick_params(labelsize=7)
        loss = surface_array(surface, "train_loss", order="xy")
        pairs = sublevel_persistence(loss)
        metrics = persistence_metrics(loss, threshold)
        finite = loss[np.isfinite(loss)]
        draw_persistence_diagram(bottom, pairs, threshold, float(finite.max() - finite.min()) if finite.size else np.nan)
        bottom.set_title(f"basins: {metrics['basins']:g} (persistence > {threshold:g} x range); total persistence "
                         f"{metrics['total_persistence']:.3g}", fontsize=8)
        bottom.tick_params(labelsize=7)
    fig.suptitle(f"{run}: the random view and the sharpest view{outcome_note(views[0][1].get('attrs', {}))}",
                 fontsize=10)
    save_figure(fig, *out_paths)
