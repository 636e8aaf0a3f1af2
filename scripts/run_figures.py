"""Rule run_figures: surface views, 1-D curves, the trajectory, and the random and sharpest views
of one run, and its surfaces as ParaView files."""

from unetscape.plots.interactive import write_vts_files
from unetscape.plots.landscape import plot_run_figures
from unetscape.plots.sharpest import plot_sharpest_view
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    plot_run_figures(smk.params.run, smk.input, smk.output, smk.params.levels, smk.params.log_scale)
    plot_sharpest_view(smk.params.run, smk.input.surface, smk.input.eigen, smk.params.threshold, smk.output.sharpest,
                       levels=smk.params.levels)
    inputs, outputs = smk.input, smk.output
    write_vts_files([(inputs.surface, outputs.random_vts), (inputs.trajectory, outputs.pca_vts),
                     (inputs.eigen, outputs.eigen_vts)], log)


if __name__ == "__main__":
    run_rule(main, snakemake)
