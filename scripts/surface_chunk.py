"""Rule surface_chunk: evaluate one chunk (scatter item "i-of-n") of a run's surface grid."""

from unetscape.jobs.surface import surface_chunk
from unetscape.workflow.rule_entry import evaluation_settings, log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    index, count = (int(k) for k in smk.wildcards.scatteritem.split("-of-"))
    surface_chunk(
        smk.input.checkpoints,
        smk.input.outcome,
        smk.input.directions,
        smk.input.data,
        smk.output[0],
        index - 1,
        count,
        evaluation_settings(smk),
        smk.params.noise,
        device,
        log=log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
