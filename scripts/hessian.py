"""Rule hessian: top eigenvalues, lambda_min and trace of the loss Hessian at a run's final weights."""

import torch

from unetscape.device import resolve_device
from unetscape.landscape.jobs import hessian
from unetscape.rule_entry import log, run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    hessian(
        smk.input.checkpoints,
        smk.input.data,
        smk.output[0],
        smk.params.curvature,
        smk.params.evaluation,
        smk.params.noise,
        resolve_device(smk.params.device),
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
