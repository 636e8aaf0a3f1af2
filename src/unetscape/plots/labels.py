"""How figures and pages name the weights a landscape file measured (no plotting library here)."""

from __future__ import annotations


# The checkpoint role a file of a run without trained weights records (unetscape/jobs/measured.py).
NO_WEIGHTS = "none"


def _role(attrs: dict, default: str) -> str:
    role = attrs.get("checkpoint_role", default)
    return "no trained weights" if role == NO_WEIGHTS else role


def measured(attrs: dict) -> tuple[str, str]:
    """(marker, words) for the weights a landscape file measured: a star only for a trained
    model (outcome finished); other outcomes get a cross and say what the weights are."""
    role = _role(attrs, "trained")
    if attrs.get("outcome", "finished") == "finished":
        return "*", "trained model"
    if attrs.get("outcome") == "external":
        return "*", role  # a trained model, trained elsewhere
    return "X", role


LOSS_NAMES = {"dice": "Dice loss", "bce": "BCE loss", "dice_bce": "Dice + BCE loss", "focal": "focal loss",
              "tversky": "Tversky loss"}


def loss_label(attrs: dict) -> str:
    """The name of the loss a landscape file measured (its `loss_function`; files that do not
    say measured the Dice loss)."""
    name = attrs.get("loss_function", "dice")
    return LOSS_NAMES.get(name, f"{name} loss")


def outcome_note(attrs: dict) -> str:
    """'' for a finished run, else e.g. ' [not_converged: final weights, not converged]'."""
    outcome = attrs.get("outcome", "finished")
    if outcome == "finished":
        return ""
    return f" [{outcome}: {_role(attrs, 'no weights')}]"
