"""Words for the outcomes of a set of runs, for the figures and tables of a study none of
whose runs finished: they say why a panel or a comparison has nothing to show."""

from __future__ import annotations

from collections import Counter
from typing import Iterable


def outcome_counts(outcomes: Iterable[str]) -> str:
    """'all 3 diverged', 'both collapsed', 'the only run diverged', or '2 diverged, 1 collapsed'
    (most frequent first, ties by name); '' for no runs."""
    counts = Counter(str(o) for o in outcomes)
    words = {outcome: outcome.replace("_", " ") for outcome in counts}
    if not counts:
        return ""
    if len(counts) == 1:
        (outcome, n), = counts.items()
        return f"{'the only run' if n == 1 else 'both' if n == 2 else f'all {n}'} {words[outcome]}"
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{n} {words[outcome]}" for outcome, n in ranked)


def no_finished_run(outcomes: Iterable[str]) -> str:
    """Why runs that gave no landscape number have none, e.g. 'no finished run: all 3 diverged'."""
    outcomes = list(outcomes)
    if not outcomes:
        return "no run"
    return f"no finished run: {outcome_counts(outcomes)}"
