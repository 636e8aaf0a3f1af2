"""Run ids: `{arch}/{recipe}/noise{noise}/seed{seed}`, one folder per training.

The recipe is the optimiser's name from the config, followed by the training's departures from
the config's defaults, each only where a study sets it:

    -lr{lr}       learning rate (default: the optimiser's `lr`)
    -bs{n}        batch size (default: `training.batch_size`)
    -n{n}         a seeded subset of n training images (default: every training image)
    -e{n}         a fixed budget of n epochs, without the plateau stop (default: `training.epochs`
                  with the plateau stop)
    -s{n}         a budget of n SGD steps instead of epochs (whole epochs holding n steps; the
                  plateau stop as usual): runs on training subsets of different sizes get the
                  same optimisation budget

so `simple/sgd/noise0/seed0` is trained as the config says, and `simple/sgd_momentum-lr0.3-e3/
noise0/seed1` is the same optimiser at learning rate 0.3 for exactly 3 epochs. Numbers are
written with `:g`, as noise levels are: 0.3 -> "0.3", 1.0 -> "1", 1e-5 -> "1e-05".
"""

from __future__ import annotations

import re

NAME = r"[A-Za-z][A-Za-z0-9_]*"
NUMBER = r"[0-9][0-9.]*(?:e[+-][0-9]+)?"
RECIPE = re.compile(
    rf"^(?P<optimizer>{NAME})(?:-lr(?P<lr>{NUMBER}))?(?:-bs(?P<batch_size>[0-9]+))?"
    rf"(?:-n(?P<train_size>[0-9]+))?(?:-e(?P<epochs>[0-9]+))?(?:-s(?P<steps>[0-9]+))?$"
)
RUN_ID = re.compile(r"^(?P<arch>[^/]+)/(?P<recipe>[^/]+)/noise(?P<noise>[^/]+)/seed(?P<seed>[0-9]+)$")
# The recipe's wildcard pattern for a set of optimiser names (Snakemake's wildcard_constraints).
RECIPE_SUFFIX = rf"(?:-lr{NUMBER})?(?:-bs[0-9]+)?(?:-n[0-9]+)?(?:-e[0-9]+)?(?:-s[0-9]+)?"


def format_number(value: float) -> str:
    """Canonical text of a noise level or learning rate: 0 -> "0", 0.05 -> "0.05"."""
    # + 0.0 turns -0.0 (allowed by "minimum: 0") into 0.0, so it cannot become "-0".
    return f"{float(value) + 0.0:g}"


def recipe(optimizer: str, lr: float | None = None, batch_size: int | None = None,
           train_size: int | None = None, epochs: int | None = None, steps: int | None = None) -> str:
    """The recipe segment of a run id (None: the config's default, left out)."""
    text = optimizer
    if lr is not None:
        text += f"-lr{format_number(lr)}"
    if batch_size is not None:
        text += f"-bs{int(batch_size)}"
    if train_size is not None:
        text += f"-n{int(train_size)}"
    if epochs is not None:
        text += f"-e{int(epochs)}"
    if steps is not None:
        text += f"-s{int(steps)}"
    return text


def parse_recipe(text: str) -> dict:
    """{optimizer, lr, batch_size, train_size, epochs, steps} of a recipe (None where not set)."""
    match = RECIPE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a training recipe of the form optimizer[-lrX][-bsN][-nN][-eN][-sN]")
    parts = match.groupdict()
    return {
        "optimizer": parts["optimizer"],
        "lr": None if parts["lr"] is None else float(parts["lr"]),
        **{k: None if parts[k] is None else int(parts[k]) for k in ("batch_size", "train_size", "epochs", "steps")},
    }


def parse_run_id(run_id: str) -> dict:
    """{arch, recipe, optimizer, lr, batch_size, train_size, epochs, steps, noise, seed} of a run id."""
    match = RUN_ID.match(run_id)
    if not match:
        raise ValueError(f"{run_id!r} is not a run id of the form arch/optimizer/noiseN/seedN")
    parts = match.groupdict()
    return {"arch": parts["arch"], "recipe": parts["recipe"], **parse_recipe(parts["recipe"]),
            "noise": float(parts["noise"]), "seed": int(parts["seed"])}
