"""Rule training_table: one row per run of a study, from the runs' histories."""

from unetscape.rule_entry import run_rule
from unetscape.training_tables import summarize_histories, write_table


def main(smk):
    table = summarize_histories(smk.params.runs, smk.input.histories)
    write_table(table, smk.output[0])


if __name__ == "__main__":
    run_rule(main, snakemake)
