"""Pick the torch device a job runs on.

`cuda` and `auto` leave the choice of GPU to the job. A Slurm job sees only the GPU it was
given (Slurm sets CUDA_VISIBLE_DEVICES), so it takes that one. On a workstation with several
GPUs, `snakemake --cores 8 --resources gpu=N` runs up to N model jobs at once but never sets
CUDA_VISIBLE_DEVICES, so each job claims a GPU of its own: it tries the visible GPUs from the
most free memory (then least busy, then lowest index) down and keeps the first one no other
job holds, marked by an advisory lock file per GPU that the operating system releases when the
job ends. With more jobs than GPUs the extra jobs share the GPU with the most free memory.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

# Lock files of the GPUs this process holds; kept open (and so locked) until the job exits.
_HELD_LOCKS: list = []


@dataclass(frozen=True)
class GpuState:
    index: int  # torch's index among the visible devices
    uuid: str  # the same GPU whatever CUDA_VISIBLE_DEVICES shows; names its lock file
    free_mb: float | None = None  # None where nvidia-smi could not tell
    utilization: float | None = None  # percent


def device_problem(name: str) -> str | None:
    """Why this machine cannot run jobs on the config's `device` (None when it can).

    `cpu` and `auto` always run (`auto` falls back to the CPU); `cuda` needs a usable CUDA
    device, `cuda:N` at least N + 1 of them.
    """
    if not name.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return (
            f"config key device: {name!r} asks for a GPU, but this machine has no usable CUDA device "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); set device: cpu or auto, "
            "or run the jobs where a GPU is"
        )
    index = name.partition(":")[2]
    if index.isdigit() and int(index) >= torch.cuda.device_count():
        return (
            f"config key device: {name!r} names GPU {index}, but this machine shows "
            f"{torch.cuda.device_count()} CUDA device(s)"
        )
    return None


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda` (a free GPU, see the module doc), `cuda:N` or `auto` (CUDA when available).

    A device this machine cannot use raises before anything is computed (`device_problem`)."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        name = "cuda"
    problem = device_problem(name)
    if problem:
        raise RuntimeError(problem)
    if name == "cuda":
        return torch.device("cuda", claim_gpu(visible_gpus()))
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"config key device: {name!r} is not a torch device ({err})") from err


def rank_gpus(gpus: list[GpuState]) -> list[GpuState]:
    """Most free memory first, then least utilisation, then lowest index; unknowns count as 0."""
    return sorted(gpus, key=lambda g: (-(g.free_mb or 0.0), g.utilization or 0.0, g.index))


def claim_gpu(gpus: list[GpuState], lock_dir: str | os.PathLike | None = None) -> int:
    """Index of the best-ranked GPU no other job holds, now held by this process."""
    if len(gpus) <= 1:
        return gpus[0].index if gpus else 0
    lock_dir = Path(lock_dir or Path(tempfile.gettempdir()) / "unetscape-gpu-locks")
    lock_dir.mkdir(parents=True, exist_ok=True)
    ranked = rank_gpus(gpus)
    for gpu in ranked:
        handle = open(lock_dir / f"{gpu.uuid}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _HELD_LOCKS.append(handle)
        return gpu.index
    return ranked[0].index


def visible_gpus() -> list[GpuState]:
    """The GPUs torch sees, with free memory and utilisation from nvidia-smi where it runs.

    nvidia-smi is asked rather than torch because torch would open a context (hundreds of MB)
    on every GPU it measures; torch's index is matched to nvidia-smi's by UUID, since the two
    may order devices differently.
    """
    gpus = []
    for index in range(torch.cuda.device_count()):
        uuid = str(getattr(torch.cuda.get_device_properties(index), "uuid", index))
        gpus.append(GpuState(index, uuid.removeprefix("GPU-")))
    usage = _nvidia_smi_usage()
    return [GpuState(g.index, g.uuid, *usage.get(g.uuid, (None, None))) for g in gpus]


def _nvidia_smi_usage() -> dict[str, tuple[float | None, float | None]]:
    """UUID -> (free MiB, utilisation %), empty where nvidia-smi is missing or fails."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=uuid,memory.free,utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_nvidia_smi(out)


def parse_nvidia_smi(out: str) -> dict[str, tuple[float | None, float | None]]:
    usage = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            usage[parts[0].removeprefix("GPU-")] = (float(parts[1]), float(parts[2]))
        except ValueError:  # "[N/A]" on some GPUs
            usage[parts[0].removeprefix("GPU-")] = (None, None)
    return usage
