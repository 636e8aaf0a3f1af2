"""Rule training_figure: the poster's training-loss panels for one study."""

from unetscape.plots.training import plot_training_study
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_training_study(
        smk.params.study, smk.input.histories, smk.output.png, smk.output.pdf, outcome_paths=smk.input.outcomes
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
