"""Rule import_external: a model trained elsewhere (a state_dict file) as a run to measure."""

from unetscape.jobs.external import import_external
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    import_external(
        smk.wildcards.name,
        smk.input.checkpoint,
        smk.params.spec,
        smk.params.loss,
        smk.input.data,
        smk.output.checkpoints,
        smk.output.outcome,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
