"""Rule landscape_metrics: per-run numbers of a study, their statistics over seeds, and how much
of each number's spread is the random direction and how much the seed."""

from unetscape.analysis.tables import conditions, direction_table, landscape_table, write_csv
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    study, metrics = smk.params.study, smk.params.metrics
    files = {key: list(smk.input.get(key, [])) for key in
             ("histories", "outcomes", "eos", "surfaces", "lines", "sets", "hessians", "flatness", "eigen", "pca")}
    table, per_set = landscape_table(study["runs"], study["archs"], files, metrics["radii"], metrics["rises"],
                                     smk.params.topology["threshold"], smk.params.tolerance, smk.params.curve_pairs)
    write_csv(table, smk.output.runs)
    summary = conditions(table, metrics)
    write_csv(summary, smk.output.conditions)
    write_csv(direction_table(table, per_set), smk.output.directions)
    log(f"{len(table)} runs in {len(summary)} conditions")


if __name__ == "__main__":
    run_rule(main, snakemake)
