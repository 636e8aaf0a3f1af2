"""Rule study_3d: a study's surfaces as light 3-D pages that open inside the report."""

from unetscape.plots.surface_viewer import write_study_pages
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    study = smk.params.study
    write_study_pages(study["title"], study["runs"], smk.input.surfaces, smk.input.trajectories, smk.output[0], log)


if __name__ == "__main__":
    run_rule(main, snakemake)
