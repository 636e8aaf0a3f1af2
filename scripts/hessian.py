"""Rule hessian: top eigenvalues, lambda_min and trace of the loss Hessian at a run's final weights."""

from unetscape.landscape.jobs import hessian
from unetscape.rule_entry import log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    hessian(
        smk.input.checkpoints,
        smk.input.outcome,
        smk.input.data,
        smk.output[0],
        smk.params.curvature,
        smk.params.evaluation,
        smk.params.noise,
        device,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
