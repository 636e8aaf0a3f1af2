"""Rule generalisation: every landscape measure rank-correlated with held-out Dice and the gap."""

import pandas as pd

from unetscape.analysis.generalisation import (
    STUDY_CONDITION,
    STUDY_FACTORS,
    all_runs_table,
    generalisation,
    write_generalisation,
)
from unetscape.plots.generalisation import plot_measure, plot_ranking
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    settings = smk.params.metrics
    if smk.params.study:  # a study built to make generalisation vary: ranked within each size
        runs = pd.read_csv(smk.input.tables[0])
        table = generalisation(runs, settings, condition=STUDY_CONDITION, factors=STUDY_FACTORS)
    else:  # every study's runs, within conditions
        runs = all_runs_table([pd.read_csv(path) for path in smk.input.tables])
        table = generalisation(runs, settings)
    write_generalisation(table, smk.output.table, smk.output.summary, settings["level"])
    plot_ranking(table, smk.output.ranking, smk.output.ranking_pdf, level=settings["level"],
                 outcomes=list(runs["outcome"]))
    for measure in table["measure"].unique():
        plot_measure(runs, table, measure, f"{smk.output.measures}/{measure}.png")
    best = table[table["target"] == "final_heldout_dice"].iloc[0]
    log(f"{len(runs)} runs, {int(best['n'])} finished; strongest: {best['measure']} tau {best['tau']:.3f}")


if __name__ == "__main__":
    run_rule(main, snakemake)
