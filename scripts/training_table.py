"""Rule training_table: one row per run of a study, from the runs' histories and outcomes."""

from unetscape.rule_entry import run_rule
from unetscape.training_tables import summarize_histories, write_table


def main(smk):
    study = smk.params.study
    table = summarize_histories(study["runs"], smk.input.histories, smk.input.outcomes, study["archs"])
    write_table(table, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)
