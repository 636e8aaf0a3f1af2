"""Rule training_table: one row per run of a study, from the runs' histories and outcomes."""

from unetscape.training.tables import summarize_histories, write_table
from unetscape.workflow.rule_entry import run_rule


def main(smk):
    study = smk.params.study
    table = summarize_histories(study["runs"], smk.input.histories, smk.input.outcomes, study["archs"])
    write_table(table, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)
