"""Self-describing checkpoints of any network of the model registry: write, read, rebuild.

A checkpoint is a torch.save'd dict: its format tag, the model's spec (`arch`: the built-in
U-Net's config dict, or the MONAI / smp / own-module spec it was built from), the state dict in
the default memory layout, and metadata (epoch, seed, run, settings). Reading it never runs
code (`weights_only=True`), and a damaged or foreign file says what is wrong with it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from unetscape.atomic import atomic_path

from .registry import build_model as build_any

# What to do about a damaged checkpoint: the run's checkpoints are one output of its training.
REWRITE = "delete the run's checkpoints folder and train it again (snakemake makes it anew)"
CHECKPOINT_FORMAT = "unetscape-checkpoint/1"


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **meta) -> None:
    """Write a self-describing checkpoint: weights, architecture and metadata (epoch, seed, run).

    The architecture is the model's spec (`registry.model_spec`: the U-Net's `arch`, or the
    MONAI / smp / own-module spec it was built from), plain data like everything else in it.
    """
    spec = getattr(model, "unetscape_spec", None) or model.arch
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": dict(spec),
        # In the default layout whatever the model trained in, so files do not depend on it.
        "state_dict": {
            k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in model.state_dict().items()
        },
        **meta,
    }
    # Saved through a file object: given a path, torch names the archive's root folder after
    # the (random) temporary file, so identical checkpoints would differ byte for byte.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


class CheckpointError(ValueError):
    """A checkpoint file is empty, damaged or not one of ours; the message names the file."""


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict. `weights_only=True`: a checkpoint file can never run code.

    A bad file gives a CheckpointError saying what is wrong with it. torch's own message is
    not passed on: for a file holding other objects it advises loading with
    weights_only=False, which is exactly what must never be done with a file of unknown origin.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"checkpoint {path} is empty (0 bytes): the copy or the job that wrote it stopped "
            f"half-way; {REWRITE}"
        )
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"checkpoint {path} is not a PyTorch checkpoint ({size} bytes, but not the zip archive "
            "torch.save writes): truncated, or another kind of file"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for damaged or foreign files
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if isinstance(err, pickle.UnpicklingError) and found:
            raise CheckpointError(
                f"checkpoint {path} holds Python objects other than tensors and plain values (such "
                f"as {found.group(1)}); a checkpoint of this workflow holds only weights and metadata, "
                "and a file that could run code is never loaded: it was not written by unetscape, "
                "or has been altered"
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is damaged ({_damage(err)}); {REWRITE}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} file")
    for key in ("arch", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(f"checkpoint {path} has no {key!r} mapping (keys: {sorted(payload)})")
    return payload


def _damage(err: Exception) -> str:
    """The first sentence of torch's complaint about a damaged file, without its advice."""
    if isinstance(err, pickle.UnpicklingError):
        return "its pickled contents are corrupt"
    text = re.sub(r"\[enforce fail at [^\]]*\]\s*\.?\s*", "", str(err)).strip()
    first = text.split(". ")[0].strip().rstrip(".")
    return first if first and "weights_only" not in first else type(err).__name__


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model stored in a checkpoint (any network of `registry`), in eval mode, on
    `device`."""
    payload = read_checkpoint(path)
    model = build_any(payload["arch"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
