"""Shared figure setup: a non-interactive backend, consistent look, atomic saving."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # jobs run without a display, possibly on cluster nodes

import matplotlib.pyplot as plt  # noqa: E402

from unetscape.atomic import atomic_path  # noqa: E402
from unetscape.models.spec import describe, model_kind  # noqa: E402

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.fontsize": "small",
        "pdf.fonttype": 42,
    }
)


# The report shows a figure at most about 900 to 1000 px wide (its frame beside the menu), so a
# point of text is shown at (900 px / the figure's width in inches) / 72 px: 8-point text is about
# 9 px in an 11-inch figure and 11 px in a 9-inch one. MAX_WIDTH caps the wide panel grids (at most
# MAX_COLUMNS panels per line); REPORT_WIDTH the figures whose text must read at 11 px or more.
MAX_COLUMNS = 5
MAX_WIDTH = 11.0
REPORT_WIDTH = 9.0
REPORT_PIXELS = 900


def shown_text_px(fontsize: float, width_inches: float, frame_px: float = REPORT_PIXELS) -> float:
    """The height in CSS pixels of `fontsize`-point text of a figure `width_inches` wide, as the
    report shows it: scaled to fit a `frame_px`-wide frame (never enlarged beyond its own size
    at the saved 150 dpi)."""
    dpi = plt.rcParams["savefig.dpi"]
    scale = min(1.0, frame_px / (width_inches * dpi))
    return fontsize / 72 * dpi * scale

# Line styles and markers: seed k gets the k-th pair, so every seed of a figure has its own look
# (four line styles alone made seed 0 and seed 4 alike).
_DASHES = ["-", "--", ":", "-."]
_MARKERS = [None, "o", "s", "^", "D", "v"]


def seed_style(index: int) -> dict:
    """Line style and marker of the seed at `index` (0-based) in a figure's sorted seeds."""
    if index >= len(_DASHES) * len(_MARKERS):
        raise ValueError(f"at most {len(_DASHES) * len(_MARKERS)} seeds can be told apart in one figure")
    style = {"ls": _DASHES[index % len(_DASHES)]}
    marker = _MARKERS[index // len(_DASHES)]
    if marker:
        style |= {"marker": marker, "ms": 3.5, "markevery": 0.2}
    return style


def round_ticks(colorbar, low: float, high: float, count: int = 5) -> None:
    """Colour-bar ticks at round values (a contour colour bar otherwise ticks every level: 0.0641, ...)."""
    from matplotlib.ticker import MaxNLocator

    ticks = [t for t in MaxNLocator(nbins=count).tick_values(low, high) if low - 1e-12 <= t <= high + 1e-12]
    colorbar.set_ticks(ticks)
    colorbar.set_ticklabels([f"{t:g}" for t in ticks])


def arch_label(name: str, arch: dict) -> str:
    """Panel title of a resolved architecture, e.g. "improved U-Net (batch norm)"."""
    if model_kind(arch) != "unet":
        return f"{name} ({describe(arch)})"
    norm = "batch norm" if arch["norm"] == "batch" else "no normalisation"
    skip = "" if arch["skip"] == "concat" else f", skip {arch['skip']}"
    return f"{name} U-Net ({norm}{skip})"


def save_figure(fig, *paths: str | os.PathLike) -> None:
    """Save one figure to each path (format from the suffix), each written atomically."""
    for path in paths:
        suffix = os.path.splitext(str(path))[1].lstrip(".")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix, bbox_inches="tight")
    plt.close(fig)
