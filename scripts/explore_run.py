"""Rule explore_run: the interactive 3-D page of one run."""

from unetscape.plots.interactive import explore_run
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    explore_run(smk.params.run, smk.input.surface, smk.input.trajectory, smk.output[0], log)


if __name__ == "__main__":
    run_rule(main, snakemake)
