"""Rule interpolate_seeds: the loss on the straight line between two seeds' final weights."""

from unetscape.landscape.jobs import final_checkpoint, interpolation
from unetscape.rule_entry import log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    interpolation(
        final_checkpoint(smk.input.a),
        final_checkpoint(smk.input.b),
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
