"""Rule run_measures: at a run's measured weights, the training path (PCA trajectory with the
surface on its plane, the straight line from the initial weights) and the curvature and
flatness measures, the curvature per part, and the plane of the Hessian's sharpest directions."""

from unetscape.jobs.run_measures import curvature_and_flatness, training_path
from unetscape.workflow.rule_entry import evaluation_settings, log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    inputs, outputs, params = smk.input, smk.output, smk.params
    training_path(
        inputs.checkpoints,
        inputs.outcome,
        inputs.data,
        outputs.directions,
        outputs.surface,
        outputs.projection,
        outputs.interpolation,
        params.trajectory,
        params.interpolation,
        evaluation_settings(smk),
        params.noise,
        device,
        log,
    )
    curvature_and_flatness(
        inputs.checkpoints,
        inputs.outcome,
        inputs.data,
        outputs.hessian,
        outputs.flatness,
        params.curvature,
        params.flatness,
        evaluation_settings(smk),
        params.noise,
        device,
        log,
        eigen_directions_out=outputs.eigen_directions,
        eigen_surface_out=outputs.eigen_surface,
        eigen_plane=params.eigen_plane,
        parts=params.parts,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
