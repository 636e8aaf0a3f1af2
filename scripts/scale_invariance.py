"""Rule scale_invariance: 1-D curves along raw and filter-normalised directions, before and
after rescaling the convolutions that feed batch norm."""

from unetscape.jobs.scale_invariance import scale_invariance
from unetscape.workflow.rule_entry import evaluation_settings, log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    scale_invariance(
        list(smk.params.runs),
        list(smk.input.checkpoints),
        list(smk.input.outcomes),
        smk.input.data,
        smk.output[0],
        smk.params.settings,
        smk.params.plane,
        evaluation_settings(smk),
        device,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
