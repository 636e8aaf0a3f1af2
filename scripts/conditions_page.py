"""Rule conditions_page: a study's tables as pages: its conditions, its runs, and how much of each
number made from random directions is the direction and how much the seed."""

from unetscape.plots.table_pages import conditions_page, directions_page, runs_page
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    title = smk.params.study["title"]
    conditions_page(f"{title}: conditions", smk.input.table, smk.output.conditions, smk.params.level)
    runs_page(f"{title}: runs", smk.input.runs, smk.output.runs)
    directions_page(f"{title}: direction and seed variance", smk.input.directions, smk.output.directions)


if __name__ == "__main__":
    run_rule(main, snakemake)
