"""Rule trajectory: PCA plane of a run's checkpoints, the projected path and the surface on it."""

from unetscape.landscape.jobs import trajectory
from unetscape.rule_entry import log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    trajectory(
        smk.input.checkpoints,
        smk.input.data,
        smk.output.directions,
        smk.output.surface,
        smk.params.trajectory,
        smk.params.evaluation,
        smk.params.noise,
        device,
        log,
        projection_out=smk.output.projection,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
