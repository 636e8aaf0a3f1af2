"""Rule learning_rate_figure: a learning-rate sweep's failures and sharpness ratios."""

from unetscape.plots.stability import plot_learning_rate_sweep
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_learning_rate_sweep(smk.params.study["title"], smk.input.runs, smk.output.png, smk.output.pdf,
                             poster_lr=smk.params.poster_lr, level=smk.params.level)


if __name__ == "__main__":
    run_rule(main, snakemake)
