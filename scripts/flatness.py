"""Rule flatness: the curvature and the flatness measures of a run's measured weights."""

from unetscape.landscape.jobs import curvature_and_flatness
from unetscape.rule_entry import log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    curvature_and_flatness(
        smk.input.checkpoints,
        smk.input.outcome,
        smk.input.data,
        smk.output.hessian,
        smk.output.flatness,
        smk.params.curvature,
        smk.params.flatness,
        smk.params.evaluation,
        smk.params.noise,
        device,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
