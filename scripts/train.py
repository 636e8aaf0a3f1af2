"""Rule train: one U-Net training run -> checkpoints/, history.csv, outcome.json and the link to
the checkpoint its landscapes measure."""

from unetscape.data import load_dataset
from unetscape.training.outcomes import read_outcome
from unetscape.training.train import TrainSettings, link_measured, train
from unetscape.workflow.rule_entry import log, run_rule, torch_job


def main(smk):
    device = torch_job(smk)
    dataset = load_dataset(smk.input.data)
    settings = TrainSettings(**smk.params.settings)
    log(f"training {smk.params.run} on {device} with {smk.threads} thread(s): {smk.params.settings}")
    result = train(
        dataset.images,
        dataset.masks,
        settings,
        checkpoint_dir=smk.output.checkpoints,
        history_path=smk.output.history,
        run_id=smk.params.run,
        device=device,
        log=log,
        heldout_images=None if dataset.heldout is None else dataset.heldout.images,
        heldout_masks=None if dataset.heldout is None else dataset.heldout.masks,
        outcome_path=smk.output.outcome,
    )
    link_measured(smk.output.checkpoints, read_outcome(smk.output.outcome), smk.output.measured)
    log(f"{result.outcome} after {result.epochs_run} epoch(s); final loss {result.final_loss:.4f}")


if __name__ == "__main__":
    run_rule(main, snakemake)
