"""Which GPU a job takes, on a fake list of GPUs (no GPU needed)."""

import subprocess
import sys

import pytest
import torch

from unetscape import device
from unetscape.device import GpuState, claim_gpu, parse_nvidia_smi, rank_gpus, resolve_device


@pytest.fixture(autouse=True)
def release_locks():
    yield
    while device._HELD_LOCKS:
        device._HELD_LOCKS.pop().close()


def gpus():
    return [
        GpuState(0, "aaa", free_mb=1000, utilization=90),
        GpuState(1, "bbb", free_mb=70000, utilization=50),
        GpuState(2, "ccc", free_mb=70000, utilization=0),
        GpuState(3, "ddd", free_mb=20000, utilization=0),
    ]


def test_rank_prefers_free_memory_then_idle_then_low_index():
    assert [g.index for g in rank_gpus(gpus())] == [2, 1, 3, 0]
    unknown = [GpuState(1, "b"), GpuState(0, "a")]
    assert [g.index for g in rank_gpus(unknown)] == [0, 1]


def test_concurrent_jobs_take_different_gpus(tmp_path):
    # Each claim opens its own lock file description, as separate job processes do.
    taken = [claim_gpu(gpus(), tmp_path) for _ in range(4)]
    assert taken == [2, 1, 3, 0]
    # More jobs than GPUs: the extra one shares the GPU with the most free memory.
    assert claim_gpu(gpus(), tmp_path) == 2


def test_a_finished_job_frees_its_gpu(tmp_path):
    assert claim_gpu(gpus(), tmp_path) == 2
    device._HELD_LOCKS.pop().close()
    assert claim_gpu(gpus(), tmp_path) == 2


def test_lock_held_by_another_process_is_respected(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX);"
            " print('locked', flush=True); sys.stdin.read()",
            str(tmp_path / "ccc.lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert claim_gpu(gpus(), tmp_path) == 1
    finally:
        holder.communicate("")


def test_one_visible_gpu_is_taken_without_locks(tmp_path):
    # A Slurm job sees only its own GPU (CUDA_VISIBLE_DEVICES): device 0.
    assert claim_gpu([GpuState(0, "only")], tmp_path / "locks") == 0
    assert not (tmp_path / "locks").exists()


def test_parse_nvidia_smi():
    out = "GPU-aaa, 1000, 90\nGPU-bbb, [N/A], [N/A]\n\n"
    assert parse_nvidia_smi(out) == {"aaa": (1000.0, 90.0), "bbb": (None, None)}


def test_cpu_and_auto_without_cuda():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="no usable CUDA device"):
            resolve_device("cuda")
