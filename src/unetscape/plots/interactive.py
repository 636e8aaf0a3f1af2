"""Interactive 3-D views of the surfaces: self-contained HTML pages (plotly), one per study with
a menu to pick the run (what the report holds), and one per run on request.

Left, the random filter-normalised plane; right, the PCA plane of the training path with the
path drawn on it. The page can be rotated and zoomed, and hovering a grid point shows its
coordinates, Dice loss, hard Dice and IoU. plotly draws the surfaces with WebGL and
`include_plotlyjs=True` puts plotly.js into the page, so it opens offline and inside the
Snakemake report.

Surfaces are dicts as `read_surface` returns them, read through `surface_array` in meshgrid
order (rows are y), which is also what plotly's `Surface(x=x, y=y, z=z)` takes.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np

from unetscape.atomic import atomic_path
from unetscape.landscape.surface_io import surface_array

from .labels import loss_label, measured, outcome_note

# Points drawn between two checkpoints, so the path follows the surface instead of cutting
# through it.
PATH_SAMPLES = 16
HOVER = (
    "{x} %{{x:.4g}}<br>{y} %{{y:.4g}}<br>Dice loss %{{z:.5f}}<br>"
    "hard Dice %{{customdata[0]:.4f}}<br>IoU %{{customdata[1]:.4f}}<extra>{name}</extra>"
)


def plane_values(surface: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The surface's loss at points (x[k], y[k]), bilinear between grid points (exact on
    them); NaN outside the grid or next to an unevaluated point."""
    from scipy.interpolate import RegularGridInterpolator

    grid_x, grid_y = surface["xcoordinates"], surface["ycoordinates"]
    values = surface_array(surface, "train_loss", order="yx")
    if len(grid_x) < 2 or len(grid_y) < 2:
        raise ValueError("a surface needs at least 2 points along each axis to interpolate on")
    interpolate = RegularGridInterpolator((grid_y, grid_x), values, bounds_error=False, fill_value=np.nan)
    return interpolate(np.column_stack([np.asarray(y, dtype=np.float64), np.asarray(x, dtype=np.float64)]))


def _surface_trace(surface: dict, name: str, axes: tuple[str, str], scene: str, colorbar_x: float):
    import plotly.graph_objects as go

    z = surface_array(surface, "train_loss", order="yx")
    extra = np.stack([surface_array(surface, "dice"), surface_array(surface, "iou")], axis=-1)
    return go.Surface(
        x=surface["xcoordinates"],
        y=surface["ycoordinates"],
        z=z,
        customdata=extra,
        colorscale="Viridis",
        colorbar={"title": {"text": "Dice loss"}, "x": colorbar_x, "len": 0.75},
        hovertemplate=HOVER.format(x=axes[0], y=axes[1], name=name),
        name=name,
        scene=scene,
    )


def _point_trace(x, y, z, text, scene: str, **style):
    import plotly.graph_objects as go

    return go.Scatter3d(x=x, y=y, z=z, text=text, hovertemplate="%{text}<extra></extra>", scene=scene,
                        showlegend=False, **style)


def _dense_path(path: np.ndarray) -> np.ndarray:
    t = np.linspace(0.0, 1.0, PATH_SAMPLES, endpoint=False)[:, None]
    pieces = [a + t * (b - a) for a, b in zip(path[:-1], path[1:])]
    return np.concatenate(pieces + [path[-1:]])


def _finite(surface: dict | None) -> bool:
    return surface is not None and bool(np.isfinite(np.asarray(surface["train_loss"])).any())


def _why_empty(what: str, surface: dict | None) -> str:
    """What a scene without a surface says: the file's reason (no trained weights), in lines
    short enough for half the page (plotly does not wrap annotations)."""
    reason = (surface or {}).get("attrs", {}).get("unavailable", "no finite values on this plane")
    return "<br>".join(textwrap.wrap(f"{what}: {reason}", 48, break_on_hyphens=False))


def run_page_figure(run: str, random_surface: dict, pca_surface: dict | None):
    """The plotly figure of one run: the random plane (scene) and the PCA plane with its path (scene2)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pca_attrs = (pca_surface or {}).get("attrs", {})
    loss = loss_label(random_surface.get("attrs", {}))
    ratio = pca_attrs.get("explained_variance_ratio") or [float("nan")] * 2
    pc = [f"PC {k + 1} ({100 * r:.1f}%)" if np.isfinite(r) else f"PC {k + 1}" for k, r in enumerate(ratio)]
    fig = make_subplots(
        rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]], horizontal_spacing=0.04,
        subplot_titles=("random filter-normalised plane", "PCA plane of the training path"),
    )
    if _finite(random_surface):
        fig.add_trace(_surface_trace(random_surface, "random plane", ("x", "y"), "scene", 0.44))
        z0 = plane_values(random_surface, [0.0], [0.0])
        words = measured(random_surface.get("attrs", {}))[1]
        fig.add_trace(_point_trace([0.0], [0.0], z0, [f"{words}<br>{loss} {z0[0]:.5f}"], "scene",
                                   mode="markers", marker={"symbol": "diamond", "size": 6, "color": "white",
                                                           "line": {"color": "black", "width": 1}}))
    else:
        fig.add_annotation(text=_why_empty("no landscape", random_surface), x=0.22, y=0.5, xref="paper",
                           yref="paper", showarrow=False)

    if "unavailable" in pca_attrs or not _finite(pca_surface):
        fig.add_annotation(text=_why_empty("no trajectory", pca_surface), x=0.78, y=0.5, xref="paper",
                           yref="paper", showarrow=False)
    else:
        fig.add_trace(_surface_trace(pca_surface, "PCA plane", tuple(pc), "scene2", 1.0))
        path = np.column_stack([pca_attrs["path_x"], pca_attrs["path_y"]])
        epochs = pca_attrs["path_epochs"]
        dense = _dense_path(path)
        line_z = plane_values(pca_surface, dense[:, 0], dense[:, 1])
        # The line rides 1% of the loss range above the surface so it is not hidden inside it;
        # the markers (what hovering reads) sit at the surface's own value.
        finite = np.asarray(pca_surface["train_loss"])[np.isfinite(pca_surface["train_loss"])]
        lift = 0.01 * float(finite.max() - finite.min())
        fig.add_trace(go.Scatter3d(x=dense[:, 0], y=dense[:, 1], z=line_z + lift, mode="lines",
                                   line={"color": "crimson", "width": 5}, hoverinfo="skip", showlegend=False,
                                   scene="scene2"))
        marker_z = plane_values(pca_surface, path[:, 0], path[:, 1])
        text = [f"epoch {e}<br>{pc[0]} {px:.4g}<br>{pc[1]} {py:.4g}<br>{loss} on the plane {z:.5f}"
                for e, (px, py), z in zip(epochs, path, marker_z)]
        fig.add_trace(_point_trace(path[:, 0], path[:, 1], marker_z, text, "scene2", mode="markers",
                                   marker={"size": 3.5, "color": "crimson"}))
    axis = {"backgroundcolor": "rgb(235, 235, 240)"}
    fig.update_layout(
        title={"text": f"{run}{outcome_note(random_surface.get('attrs', {}))}: {loss} landscape "
                       "(drag to rotate, scroll to zoom, hover for values)"},
        height=640,
        margin={"l": 30, "r": 10, "t": 70, "b": 10},
        scene={"xaxis": {"title": {"text": "x (direction 1)"}, **axis},
               "yaxis": {"title": {"text": "y (direction 2)"}, **axis},
               "zaxis": {"title": {"text": loss}, **axis}},
        scene2={"xaxis": {"title": {"text": pc[0]}, **axis}, "yaxis": {"title": {"text": pc[1]}, **axis},
                "zaxis": {"title": {"text": loss}, **axis}},
        # Only the 3-D scenes hold data: without a surface (no trained weights) plotly would
        # otherwise draw empty 2-D axes under the words saying why.
        xaxis={"visible": False},
        yaxis={"visible": False},
        plot_bgcolor="rgba(0, 0, 0, 0)",
    )
    return fig


def write_run_page(run: str, random_surface: dict, pca_surface: dict | None, out: str | os.PathLike) -> None:
    """One self-contained HTML page (plotly.js inside, about 5 MB) with the run's two surfaces."""
    write_page(run_page_figure(run, random_surface, pca_surface), out)


def study_page_figure(title: str, runs: list[tuple[str, dict, dict | None]]):
    """One plotly figure holding every run's two surfaces; a menu shows one run at a time.

    plotly.js is about 5 MB: one page per study keeps a report of dozens of runs small
    enough to open, where one page per run would embed it dozens of times.
    """
    import plotly.graph_objects as go

    if not runs:
        raise ValueError("a study page needs at least one run")
    figures = [run_page_figure(run, random, pca) for run, random, pca in runs]
    fig = go.Figure(layout=figures[0].layout)
    owner = []
    for k, part in enumerate(figures):
        for trace in part.data:
            trace.visible = k == 0
            fig.add_trace(trace)
            owner.append(k)
    buttons = []
    for k, ((run, _, _), part) in enumerate(zip(runs, figures)):
        layout = {
            "title.text": f"{title}: {run} (drag to rotate, scroll to zoom, hover for values)",
            "annotations": list(part.layout.annotations),
            "scene2.xaxis.title.text": part.layout.scene2.xaxis.title.text,
            "scene2.yaxis.title.text": part.layout.scene2.yaxis.title.text,
        }
        buttons.append({"label": run, "method": "update", "args": [{"visible": [o == k for o in owner]}, layout]})
    fig.update_layout(
        title={"text": buttons[0]["args"][1]["title.text"]},
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 0.0, "xanchor": "left", "y": 1.12,
                      "yanchor": "top", "showactive": True}],
        margin={"l": 30, "r": 10, "t": 110, "b": 10},
        height=680,
    )
    return fig


def write_page(fig, out: str | os.PathLike) -> None:
    """A self-contained HTML page (plotly.js inside, about 5 MB) of a plotly figure."""
    with atomic_path(out) as tmp:
        # A fixed div id keeps the file the same for the same surfaces (plotly draws a random one).
        fig.write_html(tmp, include_plotlyjs=True, full_html=True, div_id="landscape",
                       config={"responsive": True, "displaylogo": False})


def explore_study(title: str, runs: list[str], surface_paths: list, trajectory_paths: list, out, log=print) -> None:
    """What rule explore_study writes: one page with every run's surfaces of a study."""
    from unetscape.landscape.surface_io import read_surface

    entries = [(run, read_surface(s), read_surface(t)) for run, s, t in zip(runs, surface_paths, trajectory_paths,
                                                                           strict=True)]
    write_page(study_page_figure(title, entries), out)
    log(f"{out}: {len(entries)} runs")


def explore_run(run: str, surface_path, trajectory_path, page_out, log=print) -> None:
    """What rule explore_run writes: the 3-D page of one run."""
    from unetscape.landscape.surface_io import read_surface

    write_run_page(run, read_surface(surface_path), read_surface(trajectory_path), page_out)
    log(f"{page_out}: {run}")


def write_vts_files(pairs, log=print) -> None:
    """A ParaView file of each of a run's surfaces: `pairs` of (surface file, .vts file)."""
    from unetscape.landscape.paraview import write_vts
    from unetscape.landscape.surface_io import read_surface

    for path, out in pairs:
        surface = read_surface(path)
        write_vts(surface, out)
        log(f"{out}: {int(np.isfinite(surface['train_loss']).sum())}/{surface['train_loss'].size} points with a value")
