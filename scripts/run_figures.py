"""Rule run_figures: surface views, 1-D curves and the trajectory of one run, and its surfaces
as ParaView files."""

from unetscape.plots.interactive import write_vts_files
from unetscape.plots.landscape import plot_run_figures
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    plot_run_figures(smk.params.run, smk.input, smk.output, smk.params.levels, smk.params.log_scale)
    write_vts_files(smk.input.surface, smk.input.trajectory, smk.output.random_vts, smk.output.pca_vts, log)


if __name__ == "__main__":
    run_rule(main, snakemake)
