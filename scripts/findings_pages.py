"""Rule findings_pages: the claims for the front page (and as a page), and every comparison on a page."""

from unetscape.plots.front_page import write_findings_pages
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    write_findings_pages(smk.input.table, smk.input.claims, smk.output.claims, smk.output.page,
                         smk.output.claims_page)


if __name__ == "__main__":
    run_rule(main, snakemake)
