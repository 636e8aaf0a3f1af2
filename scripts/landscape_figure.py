"""Rule landscape_figure: one study's surfaces side by side on one colour scale."""

from unetscape.plots.landscape import plot_study_surfaces
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_study_surfaces(smk.params.study, list(smk.input.surfaces), smk.params.levels, smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_rule(main, snakemake)
