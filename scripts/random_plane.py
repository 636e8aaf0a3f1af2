"""Rule random_plane: the filter-normalised random plane of a run and the 1-D line along its x
direction (and, for a surface of one chunk, the surface itself), and the run's direction sets."""

from unetscape.jobs.random_plane import random_plane_and_line
from unetscape.workflow.rule_entry import evaluation_settings, log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    random_plane_and_line(
        smk.input.checkpoints,
        smk.input.outcome,
        smk.input.data,
        smk.output.directions,
        smk.output.line,
        smk.output.line_directions,
        smk.params.plane,
        smk.params.line,
        evaluation_settings(smk),
        smk.params.noise,
        device,
        log,
        surface_out=smk.output.get("surface"),
        sets_out=smk.output.get("sets"),
        sets=smk.params.get("sets"),
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
