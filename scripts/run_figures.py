"""Rule run_figures: surface views, 1-D curves and the trajectory of one run."""

from unetscape.plots.landscape import plot_run_figures
from unetscape.rule_entry import run_rule


def main(smk):
    plot_run_figures(smk.params.run, smk.input, smk.output, smk.params.levels, smk.params.log_scale)


if __name__ == "__main__":
    run_rule(main, snakemake)
