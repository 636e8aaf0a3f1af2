"""Rule findings: a verdict for each part of the poster's claims, and for each claim."""

import pandas as pd

from unetscape.analysis.claims import parse_claims
from unetscape.analysis.findings import findings_table, write_findings
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    # the config's `claims` section, where the rule passes it; the defaults equal the documented one
    claims = parse_claims(getattr(smk.params, "claims", None))
    tables = {study: (pd.read_csv(path), path) for study, path in smk.input.items() if study != "code"}
    findings = findings_table(tables, smk.params.metrics, claims)
    write_findings(findings, smk.output.table, smk.output.summary, smk.output.claims, smk.params.metrics, claims)
    for claim, rows in findings.groupby("claim", sort=False):
        log(f"{claim}: {rows['claim_summary'].iloc[0]}")


if __name__ == "__main__":
    run_rule(main, snakemake)
