"""Rule training_path: a run's PCA trajectory with the surface on its plane, and the straight
line from its initial to its measured weights."""

from unetscape.landscape.jobs import training_path
from unetscape.rule_entry import log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    training_path(
        smk.input.checkpoints,
        smk.input.outcome,
        smk.input.data,
        smk.output.directions,
        smk.output.surface,
        smk.output.projection,
        smk.output.interpolation,
        smk.params.trajectory,
        smk.params.interpolation,
        smk.params.evaluation,
        smk.params.noise,
        device,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
