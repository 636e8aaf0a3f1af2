"""Rule directions: the filter-normalised random plane through a run's final weights."""

from unetscape.landscape.jobs import random_plane
from unetscape.rule_entry import log, run_rule


def main(smk):
    random_plane(smk.input.checkpoints, smk.output[0], smk.params.plane, log)


if __name__ == "__main__":
    run_rule(main, snakemake)
