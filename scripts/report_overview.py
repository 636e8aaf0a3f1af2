"""Rule report_overview: what was run, for the report's front page (and as a page)."""

from unetscape.plots.front_page import write_overview
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    write_overview(smk.input.dataset, smk.params.settings, smk.input.tables, smk.output.rst, smk.output.page)


if __name__ == "__main__":
    run_rule(main, snakemake)
