"""Rule connect_seeds: a trained low-loss Bezier curve and the straight line between two seeds."""

from unetscape.jobs.curves import connect_seeds
from unetscape.workflow.rule_entry import evaluation_settings, log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    connect_seeds(
        [smk.input.a, smk.input.b],
        [smk.input.outcome_a, smk.input.outcome_b],
        smk.input.data,
        smk.output[0],
        smk.params.curves,
        evaluation_settings(smk),
        smk.params.noise,
        device,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
