"""Rule import_external: a model trained elsewhere, as a run the landscape jobs can measure.

The checkpoint is a plain `state_dict` saved with `torch.save(model.state_dict(), path)` (or a
mapping holding one under "state_dict", as Lightning and this workflow write), loaded with
`weights_only=True`, so the file can never run code. It is loaded into the network the config's
`arch` describes (every key and shape must match), checked on one image of the data set, and
written as the run's only checkpoint with an outcome file saying `external`: the landscape jobs
then measure it as they measure a trained run's weights, and nothing counts it among the runs
of a study.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from unetscape.atomic import atomic_path
from unetscape.data import load_dataset
from unetscape.jobs.measured import Log
from unetscape.models.losses import check_loss
from unetscape.models.registry import build_model, check_output
from unetscape.models.checkpoints import CheckpointError, file_sha256, save_checkpoint
from unetscape.training.evaluation import images_to_tensor
from unetscape.training.outcomes import CHECKPOINT_ROLES

CHECKPOINT_NAME = "external.pt"


def read_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a plain state_dict file (weights only: a file that could run code is refused)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # damaged, foreign or code-carrying files all end here
        raise CheckpointError(
            f"checkpoint {path} cannot be read as weights only ({type(err).__name__}); save it with "
            "torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict) or not payload or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items()
    ):
        raise CheckpointError(
            f"checkpoint {path} is not a state_dict (a mapping of parameter names to tensors); save it with "
            "torch.save(model.state_dict(), path)"
        )
    return payload


def import_external(name: str, checkpoint, spec: dict, loss: str, dataset_path, checkpoint_dir, outcome_path,
                    log: Log = print) -> None:
    """Load `checkpoint` into the network `spec`, check it on the data, and write it as run
    `external/{name}`: `checkpoint_dir/external.pt` and an outcome file naming it."""
    check_loss(loss)
    state = read_state_dict(checkpoint)
    model = build_model(spec)
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in own]
    problems += [f"{k} has shape {tuple(state[k].shape)}, the network's {tuple(v.shape)}"
                 for k, v in own.items() if k in state and state[k].shape != v.shape]
    if problems:
        raise CheckpointError(
            f"checkpoint {checkpoint} does not fit the network {spec}: {len(problems)} keys differ "
            f"({', '.join(problems[:4])}{', ...' if len(problems) > 4 else ''})"
        )
    model.load_state_dict(state)
    dataset = load_dataset(dataset_path)
    check_output(model, images_to_tensor(dataset.images[:1]), f"the network of external.{name} ({checkpoint})")
    if not all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()):
        raise CheckpointError(f"checkpoint {checkpoint} holds weights that are not finite")
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    source = {"source_checkpoint": str(checkpoint), "source_sha256": file_sha256(checkpoint)}
    save_checkpoint(checkpoint_dir / CHECKPOINT_NAME, model, run=f"external/{name}", epoch=None,
                    settings={"arch": spec, "loss": loss}, **source)
    outcome = {
        "run": f"external/{name}",
        "outcome": "external",
        "reason": f"weights trained elsewhere, read from {checkpoint}",
        "landscape_checkpoint": CHECKPOINT_NAME,
        "checkpoint_role": CHECKPOINT_ROLES["external"],
        "loss_function": loss,
        **source,
    }
    with atomic_path(outcome_path) as tmp:
        tmp.write_text(json.dumps(outcome, indent=2) + "\n")
    log(f"external/{name}: {checkpoint} loaded into {spec.get('name') or spec.get('module') or 'the U-Net'}; "
        f"its landscapes measure the {loss} loss")
