"""Rule interpolate_seeds: the straight line between the measured weights of two seeds of one condition."""

from unetscape.jobs.interpolation import interpolation_seeds
from unetscape.workflow.rule_entry import evaluation_settings, log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    interpolation_seeds(
        [smk.input.a, smk.input.b],
        [smk.input.outcome_a, smk.input.outcome_b],
        smk.input.data,
        smk.output[0],
        smk.params.interpolation,
        evaluation_settings(smk),
        smk.params.noise,
        device,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
