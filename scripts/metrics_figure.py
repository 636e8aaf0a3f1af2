"""Rule metrics_figure: a study's landscape numbers per condition, with intervals over seeds."""

from unetscape.plots.metrics import plot_study_metrics
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_study_metrics(
        smk.params.study, smk.input.runs, smk.input.conditions, smk.output.png, smk.output.pdf, level=smk.params.level
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
