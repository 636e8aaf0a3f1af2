"""Rule interpolate: the loss on the straight line from a run's initial to its final weights."""

from unetscape.landscape.jobs import interpolation, list_checkpoints
from unetscape.rule_entry import log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    checkpoints = list_checkpoints(smk.input.checkpoints)
    interpolation(
        checkpoints[0][1],
        checkpoints[-1][1],
        smk.input.data,
        smk.output[0],
        smk.params.t,
        smk.params.evaluation,
        smk.params.noise,
        device,
        log,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
