"""Rule scale_invariance: 1-D curves along raw and filter-normalised directions, before and
after rescaling the convolutions that feed batch norm."""

import torch

from unetscape.device import resolve_device
from unetscape.landscape.jobs import scale_invariance
from unetscape.rule_entry import log, run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    scale_invariance(
        list(smk.params.runs),
        list(smk.input.checkpoints),
        smk.input.data,
        smk.output[0],
        smk.params.settings,
        smk.params.plane,
        smk.params.evaluation,
        resolve_device(smk.params.device),
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
