"""Job edge_of_stability: does a run train at its optimiser's edge of stability? One JSON file.

At a few checkpoints of the run, evenly spaced in epoch up to the measured weights
(`measures.edge_of_stability.EPOCH_RULE`), lambda_max of the training loss on the evaluation
subset and the batch sharpness of the run's own mini-batches, each against its threshold from
the run's lr and momentum (`measures.edge_of_stability`).
"""

from __future__ import annotations

import json

from unetscape import __version__
from unetscape.atomic import atomic_path
from unetscape.data import load_dataset
from unetscape.jobs.measured import (
    Log,
    checkpoint_attrs,
    epoch_of,
    json_safe,
    list_checkpoints,
    load_evaluation_set,
    measured_weights,
    training_indices,
)
from unetscape.measures.edge_of_stability import (
    EPOCH_RULE,
    checkpoint_training,
    edge_of_stability,
    evenly_spaced_epochs,
    resolve_sharpness_settings,
)
from unetscape.training.evaluation import images_to_tensor, masks_to_tensor

NO_SETTINGS = (
    "the measured checkpoint does not record the learning rate, momentum and batch size it was trained "
    "with (a model trained elsewhere): there is no edge of stability to measure against"
)


def edge_of_stability_job(checkpoint_dir, outcome_path, dataset_path, out, settings: dict | None, evaluation: dict,
                          noise: float, device, log: Log = print) -> None:
    """Write `out` (edge_of_stability.json, NaN as null): the per-checkpoint rows, the run's
    summary, the thresholds with words, the settings, seeds, chosen epochs, evaluation set,
    checkpoint sha256s, version and device.

    `settings`: stability.sharpness (`SHARPNESS_DEFAULTS` fill what is missing); `evaluation`:
    the landscape evaluation section (its subset is where lambda_max is computed); `noise`: the
    run's input noise (the evaluation set's fixed noisy copy). A run without trained weights, or
    whose checkpoint does not say how it was trained, gets a file saying why (`unavailable`) and
    holding no numbers.
    """
    settings = resolve_sharpness_settings(settings)  # bad settings fail before any work
    path, label = measured_weights(checkpoint_dir, outcome_path)
    if path is not None and checkpoint_training(path) is None:
        label = {**label, "unavailable": NO_SETTINGS}
    if "unavailable" in label:
        record = {**label, "settings": settings, "rows": [], "summary": None, "unetscape_version": __version__}
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(json_safe(record), indent=2) + "\n")
        log(f"no edge-of-stability numbers: {label['unavailable']}")
        return
    available = list_checkpoints(checkpoint_dir)
    epochs = evenly_spaced_epochs([e for e, _ in available], epoch_of(path), settings["checkpoints"])
    chosen = [(e, p) for e, p in available if e in epochs]
    dataset = load_dataset(dataset_path)
    # The batch sharpness draws from every image the run trained on, as its SGD steps did.
    subset = training_indices(outcome_path)
    images, masks = (dataset.images, dataset.masks) if subset is None else (dataset.images[subset], dataset.masks[subset])
    x_train, y_train = images_to_tensor(images, device), masks_to_tensor(masks, device)
    x_eval, y_eval, description = load_evaluation_set(dataset_path, evaluation, noise, device,
                                                      outcome_path=outcome_path)
    log(f"edge of stability at epochs {epochs} (of {len(available)} saved)")
    result = edge_of_stability(chosen, x_train, y_train, x_eval, y_eval, settings, log)
    record = {
        **label,
        **checkpoint_attrs(path),
        **result,
        "epochs": epochs,
        "available_epochs": [e for e, _ in available],
        "epoch_rule": EPOCH_RULE,
        "checkpoint_sha256s": {str(row["epoch"]): row["checkpoint_sha256"] for row in result["rows"]},
        "eval_set": description,
        "training_images": int(x_train.shape[0]),
        "device": str(device),
        "unetscape_version": __version__,
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(json_safe(record), indent=2) + "\n")
    summary = result["summary"]
    log(
        f"edge of stability: final lambda_max ratio {summary['final_lambda_ratio']:.3f}, batch ratio "
        f"{summary['final_batch_ratio']:.3f}; at the edge (>= {summary['edge_fraction']}) in "
        f"{summary['fraction_lambda_at_edge']:.2f} and {summary['fraction_batch_at_edge']:.2f} of the checkpoints"
    )
