"""Rule line_1d: the loss along the random plane's filter-normalised x direction."""

import torch

from unetscape.device import resolve_device
from unetscape.landscape.jobs import line
from unetscape.rule_entry import log, run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    line(
        smk.input.checkpoints,
        smk.input.directions,
        smk.input.data,
        smk.output[0],
        smk.params.line,
        smk.params.evaluation,
        smk.params.noise,
        resolve_device(smk.params.device),
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
