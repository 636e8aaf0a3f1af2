"""Rule surface_chunk: evaluate one chunk (scatter item "i-of-n") of a run's surface grid."""

import torch

from unetscape.device import resolve_device
from unetscape.landscape.jobs import surface_chunk
from unetscape.rule_entry import log, run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    index, count = (int(k) for k in smk.wildcards.scatteritem.split("-of-"))
    surface_chunk(
        smk.input.checkpoints,
        smk.input.directions,
        smk.input.data,
        smk.output[0],
        index - 1,
        count,
        smk.params.evaluation,
        smk.params.noise,
        resolve_device(smk.params.device),
        log=log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
