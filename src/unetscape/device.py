"""Pick the torch device a job runs on."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available, else CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested in the config but CUDA is not available")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"config key device: {name!r} is not a torch device ({err})") from err
