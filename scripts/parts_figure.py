"""Rule parts_figure: the curvature of each part of the network, per condition."""

from unetscape.plots.parts import plot_parts
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_parts(smk.params.study["title"], smk.input.runs, smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_rule(main, snakemake)
