"""Rule explore_study: one interactive 3-D page with every run's surfaces of a study."""

from unetscape.plots.interactive import explore_study
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    study = smk.params.study
    explore_study(study["title"], study["runs"], smk.input.surfaces, smk.input.trajectories, smk.output[0], log)


if __name__ == "__main__":
    run_rule(main, snakemake)
