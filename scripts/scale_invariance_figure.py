"""Rule scale_invariance_figure: the batch-norm scale symmetry made visible."""

from unetscape.plots.metrics import plot_scale_invariance
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    plot_scale_invariance(smk.input[0], smk.output.png, smk.output.pdf, norms_of=smk.params.norms)


if __name__ == "__main__":
    run_rule(main, snakemake)
