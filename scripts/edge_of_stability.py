"""Rule edge_of_stability: lambda_max and the batch sharpness of a run at a few of its
checkpoints, each against its optimiser's threshold."""

from unetscape.jobs.edge_of_stability import edge_of_stability_job
from unetscape.workflow.rule_entry import evaluation_settings, log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    edge_of_stability_job(
        smk.input.checkpoints,
        smk.input.outcome,
        smk.input.data,
        smk.output[0],
        smk.params.sharpness,
        evaluation_settings(smk),
        smk.params.noise,
        device,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
