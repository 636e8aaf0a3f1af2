"""Rule line_1d: the loss along the random plane's filter-normalised x direction."""

from unetscape.landscape.jobs import line
from unetscape.rule_entry import log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    line(
        smk.input.checkpoints,
        smk.input.directions,
        smk.input.data,
        smk.output.line,
        smk.params.line,
        smk.params.evaluation,
        smk.params.noise,
        device,
        log,
        directions_out=smk.output.directions,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)
