"""Rule explore_surfaces: a run's interactive 3-D page and the ParaView files of its surfaces."""

from unetscape.plots.interactive import explore_run
from unetscape.rule_entry import log, run_rule


def main(smk):
    explore_run(
        smk.params.run,
        smk.input.surface,
        smk.input.trajectory,
        smk.output.page,
        smk.output.random_vts,
        smk.output.pca_vts,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
