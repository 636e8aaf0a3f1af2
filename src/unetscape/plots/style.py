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
