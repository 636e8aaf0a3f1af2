"""Rule findings: a test, an effect size and a verdict for each of the poster's claims."""

import pandas as pd

from unetscape.analysis.findings import findings_table, write_findings
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    tables = {study: (pd.read_csv(path), path) for study, path in smk.input.items() if study != "code"}
    findings = findings_table(tables, smk.params.metrics)
    write_findings(findings, smk.output.table, smk.output.summary)
    for claim, rows in findings.groupby("claim", sort=False):
        log(f"{claim}: {rows['claim_verdict'].iloc[0]}")


if __name__ == "__main__":
    run_rule(main, snakemake)
