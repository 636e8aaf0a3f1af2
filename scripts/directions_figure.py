"""Rule directions_figure: what the direction and what the seed changes, per condition."""

from unetscape.plots.directions import plot_directions
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_directions(smk.params.study["title"], smk.input.table, smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_rule(main, snakemake)
