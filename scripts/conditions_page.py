"""Rule conditions_page: a study's conditions (held-out Dice, main measures, intervals) as a table on the page."""

from unetscape.plots.report_pages import conditions_page
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    conditions_page(f"{smk.params.study['title']}: conditions", smk.input.table, smk.output[0], smk.params.level)


if __name__ == "__main__":
    run_rule(main, snakemake)
