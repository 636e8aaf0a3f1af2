"""Rule scale_invariance: 1-D curves of measured weights whose batch-norm input convolutions
are rescaled, along raw and filter-normalised directions."""

from __future__ import annotations

import h5py
import numpy as np

from unetscape import __version__
from unetscape.atomic import atomic_path
from unetscape.jobs.measured import Log, checkpoint_loss, evaluator_options, load_evaluation_set, measured_weights
from unetscape.landscape.directions import make_directions
from unetscape.landscape.grid import SurfaceGrid
from unetscape.landscape.surface import SurfaceEvaluator
from unetscape.landscape.surface_io import write_attrs
from unetscape.models.checkpoints import load_checkpoint


def scale_invariance(runs: list[str], checkpoint_dirs: list, outcome_paths: list, dataset_path, out,
                     settings: dict, plane: dict, evaluation: dict, device, log: Log = print) -> None:
    """1-D curves of each run's measured weights rescaled by each factor, along a raw (norm
    none) and a filter-normalised direction drawn with the plane's seed.

    Stored as loss[run, direction norm, factor, x]; factor 1 (the trained weights) comes first.
    A run without trained weights keeps NaN curves; `outcomes` records each run's outcome.
    """
    from unetscape.landscape.rescale import rescale_block_convs

    factors = [1.0] + [float(f) for f in settings["factors"]]
    norms = ["none", "filter"]
    grid = SurfaceGrid.from_config(settings["x"])
    loss = np.full((len(runs), len(norms), len(factors), len(grid.x)), np.nan)
    x, y, description = load_evaluation_set(dataset_path, evaluation, 0.0, device)
    checkpoints, outcomes, losses = [], [], []
    for r, (run, checkpoint_dir, outcome_path) in enumerate(zip(runs, checkpoint_dirs, outcome_paths, strict=True)):
        path, label = measured_weights(checkpoint_dir, outcome_path)
        checkpoints.append(None if path is None else str(path))
        outcomes.append(label["outcome"])
        losses.append("" if path is None else checkpoint_loss(path))  # "": nothing measured
        if path is None:
            log(f"{run}: {label['unavailable']}")
            continue
        base = load_checkpoint(path, device)
        for f, factor in enumerate(factors):
            model = rescale_block_convs(base, factor) if factor != 1.0 else base
            for n, norm in enumerate(norms):
                direction = make_directions(model, plane["seed"], norm, plane["ignore"], ndim=1)
                with SurfaceEvaluator(model, x, y, direction, loss=losses[-1], **evaluator_options(evaluation)) as ev:
                    loss[r, n, f] = ev.evaluate_points(grid.points(), grid)["loss"]
            log(f"{run} x{factor:g}: loss at 0 = {loss[r, 0, f, np.argmin(np.abs(grid.x))]:.5f}")
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("xcoordinates", data=grid.x)
        f.create_dataset("train_loss", data=loss)
        write_attrs(f, {"runs": runs, "checkpoints": checkpoints, "outcomes": outcomes, "loss_functions": losses,
                        "norms": norms, "factors": factors,
                        "direction_seed": plane["seed"], "direction_ignore": plane["ignore"], "bn": evaluation["bn"],
                        "eval_set": description, "layout": "train_loss[run, norm, factor, x]",
                        "unetscape_version": __version__})
