"""Rule landscape_metrics: per-run landscape numbers of a study and their statistics over seeds."""

from unetscape.analysis.tables import conditions, landscape_table, write_csv
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    study, metrics = smk.params.study, smk.params.metrics
    table = landscape_table(
        study["runs"],
        study["archs"],
        smk.input.surfaces,
        smk.input.lines,
        smk.input.hessians,
        smk.input.histories,
        metrics["radii"],
        metrics["rises"],
        smk.input.flatness,
        smk.input.outcomes,
    )
    write_csv(table, smk.output.runs)
    summary = conditions(table, metrics)
    write_csv(summary, smk.output.conditions)
    log(f"{len(table)} runs in {len(summary)} conditions")


if __name__ == "__main__":
    run_rule(main, snakemake)
