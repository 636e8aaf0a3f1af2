"""Rule merge_surface: gather a run's chunk files into surface.h5."""

from unetscape.landscape.surface_io import merge_chunk_files
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    merge_chunk_files(list(smk.input.chunks), smk.output[0], log)


if __name__ == "__main__":
    run_rule(main, snakemake)
