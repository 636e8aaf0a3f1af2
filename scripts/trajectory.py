"""Rule trajectory: PCA plane of a run's checkpoints, the projected path and the surface on it."""

import torch

from unetscape.device import resolve_device
from unetscape.landscape.jobs import trajectory
from unetscape.rule_entry import log, run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    trajectory(
        smk.input.checkpoints,
        smk.input.data,
        smk.output.directions,
        smk.output.surface,
        smk.params.trajectory,
        smk.params.evaluation,
        smk.params.noise,
        resolve_device(smk.params.device),
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
