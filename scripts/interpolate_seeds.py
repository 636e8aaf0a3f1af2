"""Rule interpolate_seeds: the loss on the straight line between two seeds' final weights."""

import torch

from unetscape.device import resolve_device
from unetscape.landscape.jobs import final_checkpoint, interpolation
from unetscape.rule_entry import log, run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    interpolation(
        final_checkpoint(smk.input.a),
        final_checkpoint(smk.input.b),
        smk.input.data,
        smk.output[0],
        smk.params.t,
        smk.params.evaluation,
        smk.params.noise,
        resolve_device(smk.params.device),
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
