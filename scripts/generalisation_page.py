"""Rule generalisation_page: the measures ranked by how well they predict generalisation, on the page."""

from unetscape.analysis.generalisation import MEASURES, TARGETS
from unetscape.plots.table_pages import generalisation_page
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    generalisation_page(smk.input.table, smk.output[0], TARGETS, MEASURES)


if __name__ == "__main__":
    run_rule(main, snakemake)
