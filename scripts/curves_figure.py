"""Rule curves_figure: the loss along the trained curves and the straight lines between seeds."""

from unetscape.plots.curves import plot_curves
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_curves(smk.params.study["title"], smk.params.pairs, smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_rule(main, snakemake)
