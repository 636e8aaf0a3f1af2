"""Run a Snakemake rule's script: log to the rule's log file, and let every failure explain itself."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, Iterable

# Errors that describe bad input in words and name their file (DatasetError, ConfigError,
# CheckpointError, ...): their message is the summary. Any other error is prefixed with its type.
BAD_INPUT = (ValueError, FileNotFoundError)
SUMMARY_CHARS = 600


def run_rule(main: Callable[[object], None], smk) -> None:
    """Call `main(smk)` with stderr sent to the rule's log.

    Every failure, whatever its type, ends the job with exit status 1 after writing its
    traceback and a one-line summary to the log; the summary also goes to the terminal. The
    summary names the file the failure concerns: the message's own, or else the job's file
    found in the failing call chain (an h5py or torch error often names none).
    """
    terminal = sys.stderr
    log = open(smk.log[0], "w", buffering=1) if smk.log else terminal
    sys.stderr = log
    try:
        main(smk)
    except Exception as err:
        message = f"error in rule {smk.rule}: {summary(err, job_files(smk))}"
        traceback.print_exc(file=log)
        print(message, file=log)
        if log is not terminal:
            print(message, file=terminal)
        sys.exit(1)
    except KeyboardInterrupt:
        traceback.print_exc(file=log)
        print(f"error in rule {smk.rule}: interrupted", file=log)
        raise
    finally:
        sys.stderr = terminal
        if log is not terminal:
            log.close()


def job_files(smk) -> list[str]:
    """The job's input, output and log paths."""
    files = []
    for group in ("input", "output", "log"):
        files += [str(f) for f in getattr(smk, group, None) or [] if isinstance(f, (str, os.PathLike))]
    return files


def summary(err: BaseException, files: Iterable[str]) -> str:
    """One line: what went wrong, and the file it concerns."""
    text = " ".join(str(err).split()) or "(no message)"
    if not isinstance(err, BAD_INPUT):
        text = f"{type(err).__name__}: {text}"
    if len(text) > SUMMARY_CHARS:
        text = text[: SUMMARY_CHARS - 3] + "..."
    files = [f for f in files if f]
    if names_a_file(text, files):
        return text
    path = getattr(err, "filename", None) or failing_file(err, files)
    if path:
        return f"{text} [file: {os.fsdecode(path)}]"
    return f"{text} [the message names no file; the job's files: {', '.join(files) or 'none'}]"


def names_a_file(text: str, files: Iterable[str]) -> bool:
    """Whether `text` names one of the job's files, or any other path that exists."""
    if any(f in text for f in files):
        return True
    for word in text.split():
        word = word.strip("'\"`()[]{},;:")
        if os.sep in word and os.path.exists(word):
            return True
    return False


def _as_path(value) -> str | None:
    if isinstance(value, (str, bytes)) and 0 < len(value) < 4096:
        try:
            text = os.fsdecode(value)
        except (UnicodeDecodeError, TypeError):
            return None
        return None if "\n" in text else text
    if isinstance(value, os.PathLike):
        return os.fspath(value) if isinstance(os.fspath(value), str) else None
    return None


def failing_file(err: BaseException, files: Iterable[str]) -> str | None:
    """The job file (or a file inside a job folder) held by the innermost failing call.

    Walks the traceback from the call that raised outwards (and then the errors it was raised
    from), returning the first local value that is one of the job's paths or lies under one.
    """
    roots = {os.path.abspath(f): f for f in files}
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        frames = []
        tb = err.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        for frame in reversed(frames):
            best = None
            for value in list(frame.f_locals.values()):
                path = _as_path(value)
                if path is None:
                    continue
                full = os.path.abspath(path)
                for root in roots:
                    if full == root or full.startswith(root.rstrip(os.sep) + os.sep):
                        if best is None or len(path) > len(best):
                            best = path
            if best is not None:
                return best
        err = err.__cause__ or err.__context__
    return None


def log(message: str) -> None:
    """Progress line to the rule's log (stderr while run_rule is active)."""
    print(message, file=sys.stderr, flush=True)


def torch_job(smk):
    """Set up torch for a model job: the rule's `threads`, and the config's device resolved
    (`unetscape.device.resolve_device`: a free GPU for `cuda`/`auto`). Returns the device.

    The device is read from the config, not from the rule's params: it is how a job runs, not
    what it computes, so changing it re-runs nothing (every file records the device it was
    computed on). A device this machine cannot use fails here, before the job writes anything.
    """
    import torch  # here, so rules that draw figures or tables do not load torch

    from unetscape.device import resolve_device

    torch.set_num_threads(smk.threads)
    return resolve_device(smk.config["device"])


def evaluation_settings(smk) -> dict:
    """The landscape evaluation settings of a job: what it computes (its params) and how it
    runs (`RUN_ONLY_EVALUATION`, read from the config so that changing them re-runs nothing)."""
    from unetscape.workflow.config import RUN_ONLY_EVALUATION

    how = smk.config["landscape"]["evaluation"]
    return {**smk.params.evaluation, **{key: how[key] for key in RUN_ONLY_EVALUATION if key in how}}
