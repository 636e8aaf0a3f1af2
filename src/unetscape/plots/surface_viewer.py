"""Light interactive 3-D pages of a study's surfaces, small enough to open inside the report.

Snakemake's HTML report embeds every result as a base64 data URL, and Chromium refuses to open
a data URL over 2 MB in a frame: a page with plotly.js (about 5 MB) stays blank there. These
pages carry their own small WebGL viewer (`viewer_script`) and the surfaces as float32 arrays,
and a study whose runs do not fit in one page under `PAGE_BUDGET` is split into several pages,
each with a menu of its runs. The plotly pages (`interactive`) stay for opening from disk.

Surfaces are dicts as `read_surface` returns them, read through `surface_array` in meshgrid
order (rows are y), the viewer's order too.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
from pathlib import Path

import numpy as np

from unetscape.landscape.surface_io import surface_array

from .labels import loss_label, measured, outcome_note
from .viewer_script import SCRIPT, STYLE

# Chromium's limit on a URL (and so on a data URL opened in a frame), in characters.
DATA_URL_LIMIT = 2 * 1024 * 1024
# The most bytes one page may have: base64 makes 4/3 of it, plus the data URL's header.
PAGE_BUDGET = 1_400_000
COLOURS = 64


def _floats(values) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def _colormap() -> list[list[float]]:
    from matplotlib import colormaps

    return [[round(float(c), 4) for c in colormaps["viridis"](k / (COLOURS - 1))[:3]] for k in range(COLOURS)]


def plane_entry(surface: dict | None, title: str, xlabel: str, ylabel: str) -> dict:
    """One plane for the viewer: coordinates, Dice loss, hard Dice and IoU (rows = y), the
    measured weights (random plane) or the training path (PCA plane), or why there is none."""
    attrs = (surface or {}).get("attrs", {})
    entry = {"title": title, "xlabel": xlabel, "ylabel": ylabel}
    values = None if surface is None else np.asarray(surface["train_loss"], dtype=float)
    if surface is None or "unavailable" in attrs or not np.isfinite(values).any():
        entry["unavailable"] = attrs.get("unavailable", "no finite values on this plane")
        return entry
    entry |= {
        "x": _floats(surface["xcoordinates"]),
        "y": _floats(surface["ycoordinates"]),
        "loss": _floats(surface_array(surface, "train_loss", order="yx")),
        "dice": _floats(surface_array(surface, "dice", order="yx")),
        "iou": _floats(surface_array(surface, "iou", order="yx")),
        "loss_label": loss_label(attrs),
    }
    if "path_x" in attrs:
        entry["path"] = {"x": [float(v) for v in attrs["path_x"]], "y": [float(v) for v in attrs["path_y"]],
                         "epochs": [int(e) for e in attrs["path_epochs"]]}
    else:
        entry["marker"] = {"x": 0.0, "y": 0.0, "label": measured(attrs)[1]}
    return entry


def run_entry(run: str, random_surface: dict, pca_surface: dict | None) -> dict:
    """One run for the viewer: its random plane and its PCA plane with the training path."""
    pca_attrs = (pca_surface or {}).get("attrs", {})
    ratio = pca_attrs.get("explained_variance_ratio") or [float("nan")] * 2
    pc = [f"PC {k + 1} ({100 * r:.1f}%)" if np.isfinite(r) else f"PC {k + 1}" for k, r in enumerate(ratio)]
    return {
        "name": run,
        "note": outcome_note(random_surface.get("attrs", {})).strip(),
        "planes": [
            plane_entry(random_surface, "random filter-normalised plane through the measured weights",
                        "x (direction 1)", "y (direction 2)"),
            plane_entry(pca_surface, "PCA plane of the training path (red: saved checkpoints)", pc[0], pc[1]),
        ],
    }


def page_html(title: str, runs: list[dict]) -> str:
    """A self-contained page (no network) showing the given runs, one at a time."""
    data = {"title": title, "colormap": _colormap(), "runs": runs}
    # "</" inside a script element would end it; JSON allows the escaped form.
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        "<div class=\"help\">Drag to rotate, scroll to zoom, double-click to reset; hover a point for its "
        "coordinates, Dice loss, hard Dice and IoU. Each plane has its own colour scale.</div>"
        "<div id=\"viewer\"></div>"
        f"<script id=\"landscape-data\" type=\"application/json\">{payload}</script>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def pack_pages(title: str, runs: list[dict], budget: int = PAGE_BUDGET) -> list[tuple[int, int, str]]:
    """The runs split, in order, into as few pages as keep each under `budget` bytes:
    (first, last, page) with 1-based run numbers. A single run over the budget raises."""
    if not runs:
        raise ValueError("a 3-D page needs at least one run")
    pages, start = [], 0
    while start < len(runs):
        end = start + 1
        page = page_html(_part_title(title, start, end, len(runs)), runs[start:end])
        if len(page.encode()) > budget:
            raise ValueError(f"the 3-D page of run {runs[start]['name']} alone is {len(page.encode())} bytes, over the "
                             f"{budget} a page may have to open inside the report: use a coarser grid")
        while end < len(runs):
            bigger = page_html(_part_title(title, start, end + 1, len(runs)), runs[start:end + 1])
            if len(bigger.encode()) > budget:
                break
            end, page = end + 1, bigger
        pages.append((start + 1, end, page))
        start = end
    if len(pages) > 1:  # titles say which part of the study each page holds
        pages = [(a, b, page_html(_part_title(title, a - 1, b, len(runs)), runs[a - 1:b])) for a, b, _ in pages]
    return pages


def _part_title(title: str, start: int, end: int, total: int) -> str:
    return title if end - start == total else f"{title} (runs {start + 1}-{end} of {total})"


def page_name(first: int, last: int) -> str:
    return f"runs{first:02d}-{last:02d}.html"


def write_study_pages(title: str, runs: list[str], surface_paths: list, trajectory_paths: list, out_dir,
                      log=print) -> list[Path]:
    """What rule study_3d writes: a folder of pages holding every run of a study (as few pages
    as fit under the budget), written to a temporary folder and renamed when complete."""
    from unetscape.landscape.surface_io import read_surface

    entries = [run_entry(run, read_surface(s), read_surface(t))
               for run, s, t in zip(runs, surface_paths, trajectory_paths, strict=True)]
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    written = []
    try:
        for first, last, page in pack_pages(f"{title}: Dice loss landscapes in 3-D", entries):
            (tmp / page_name(first, last)).write_text(page)
            written.append(out_dir / page_name(first, last))
            log(f"{page_name(first, last)}: runs {first}-{last} of {len(entries)}, {len(page.encode())} bytes")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written
