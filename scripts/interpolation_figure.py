"""Rule interpolation_figure: interpolation curves of a study (init -> final, seed -> seed)."""

from unetscape.plots.landscape import plot_study_interpolations
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_study_interpolations(
        smk.params.study,
        list(smk.input.init),
        smk.params.pairs,
        list(smk.input.pairs),
        smk.params.log_scale,
        smk.output.png,
        smk.output.pdf,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
