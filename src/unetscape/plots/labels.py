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
    return "X", role


def outcome_note(attrs: dict) -> str:
    """'' for a finished run, else e.g. ' [not_converged: final weights, not converged]'."""
    outcome = attrs.get("outcome", "finished")
    if outcome == "finished":
        return ""
    return f" [{outcome}: {_role(attrs, 'no weights')}]"
