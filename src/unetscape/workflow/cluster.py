"""What a job asks a scheduler for: the GPU of a model job.

Kept free of torch so the workflow can import it when it parses the rules.
"""

from __future__ import annotations


def gpu_resources(config: dict) -> dict:
    """Snakemake resources of a job that runs a model (training, landscapes, curvature).

    One GPU unless the config's device is `cpu`, so a CPU config never waits for a GPU. With
    `gpu_request: gpus` (default) the GPU is the `gpu` resource: the Slurm executor turns it
    into `--gpus=[MODEL:]1`, and a local `--resources gpu=N` caps how many run at once. Some
    clusters accept only `--gres`; `gpu_request: gres` asks `gres=gpu[:MODEL]:1` instead (the
    Slurm executor rejects a job that sets both).
    """
    if config["device"] == "cpu":
        return {"gpu": 0}
    model = config.get("gpu_model")
    if config.get("gpu_request", "gpus") == "gres":
        return {"gres": f"gpu:{model}:1" if model else "gpu:1"}
    return {"gpu": 1, "gpu_model": model} if model else {"gpu": 1}
