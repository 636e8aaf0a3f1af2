"""Rule sharpness_figure: every run's sharpness against its optimiser's edge of stability."""

from unetscape.plots.stability import plot_sharpness
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_sharpness(smk.params.study["title"], smk.input.runs, list(smk.input.eos), smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_rule(main, snakemake)
