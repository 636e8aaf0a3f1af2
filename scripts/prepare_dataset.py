"""Rule prepare_dataset: build the configured data set as one .npz file."""

from unetscape.data import prepare_dataset, save_dataset
from unetscape.workflow.rule_entry import log, run_rule


def main(smk):
    dataset = prepare_dataset(smk.params.data)
    save_dataset(dataset, smk.output[0])
    log(f"wrote {len(dataset.ids)} images of {dataset.images.shape[1:3]} to {smk.output[0]}")


if __name__ == "__main__":
    run_rule(main, snakemake)
