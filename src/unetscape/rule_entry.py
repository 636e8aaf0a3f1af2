"""Run a Snakemake rule's script: log to the rule's log file, turn bad input into one line."""

from __future__ import annotations

import sys
import traceback
from typing import Callable


def run_rule(main: Callable[[object], None], smk) -> None:
    """Call `main(smk)` with stderr sent to the rule's log.

    Errors about bad input (ValueError, FileNotFoundError, RuntimeError and their
    subclasses) end the job with a one-line message naming what is wrong, both in the log and
    on the terminal; anything else keeps its full traceback.
    """
    terminal = sys.stderr
    log = open(smk.log[0], "w", buffering=1) if smk.log else terminal
    sys.stderr = log
    try:
        main(smk)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        message = f"error in rule {smk.rule}: {err}"
        traceback.print_exc(file=log)
        print(message, file=log)
        if log is not terminal:
            print(message, file=terminal)
        sys.exit(1)
    finally:
        sys.stderr = terminal
        if log is not terminal:
            log.close()


def log(message: str) -> None:
    """Progress line to the rule's log (stderr while run_rule is active)."""
    print(message, file=sys.stderr, flush=True)


def torch_job(smk):
    """Set up torch for a model job: the rule's `threads`, and the config's device resolved
    (`unetscape.device.resolve_device`: a free GPU for `cuda`/`auto`). Returns the device."""
    import torch  # here, so rules that draw figures or tables do not load torch

    from .device import resolve_device

    torch.set_num_threads(smk.threads)
    return resolve_device(smk.params.device)
