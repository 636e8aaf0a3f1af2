"""Rule findings: a verdict for each part of the poster's claims, and for each claim."""

import pandas as pd

from unetscape.analysis.findings import findings_table, write_findings
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    tables = {study: (pd.read_csv(path), path) for study, path in smk.input.items() if study != "code"}
    findings = findings_table(tables, smk.params.metrics)
    write_findings(findings, smk.output.table, smk.output.summary, smk.output.claims, smk.params.metrics)
    for claim, rows in findings.groupby("claim", sort=False):
        parts = rows.drop_duplicates("part")
        detail = ", ".join(f"{p}: {v}" for p, v in zip(parts["part"], parts["part_verdict"]) if isinstance(p, str))
        log(f"{claim}: {rows['claim_verdict'].iloc[0]} ({detail})")


if __name__ == "__main__":
    run_rule(main, snakemake)
