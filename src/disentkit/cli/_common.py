"""Helpers shared by the command groups: turning bad input into one red paragraph, showing
warnings once each, parsing ``--metrics``, and sending a run's results to its trackers."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import typer
from rich.console import Console
from rich.text import Text

from disentkit._console import error, stderr
from disentkit._extras import MissingExtraError

# numpy, scikit-learn and the metrics are imported inside the functions that use them, so
# that `disentkit --help` starts fast.

__all__ = [
    "DEBUG_HINT",
    "Mode",
    "log_to_trackers",
    "parse_metric_list",
    "reported_warnings",
    "run_errors",
    "user_errors",
]

Mode = Literal["reference", "fast"]
DEBUG_HINT = " (run with --debug for the traceback)"


@contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """Turn bad input (``ValueError``/``TypeError``) and a missing extra into one red
    paragraph and exit code 2."""
    try:
        yield
    except MissingExtraError as exc:
        if debug:
            raise
        error(str(exc))
        raise typer.Exit(2) from None
    except (ValueError, TypeError) as exc:
        if debug:
            raise
        from disentkit.io import InputError

        hint = "" if isinstance(exc, InputError) else DEBUG_HINT
        error(str(exc) or type(exc).__name__, hint)
        raise typer.Exit(2) from None


@contextmanager
def run_errors(debug: bool) -> Iterator[None]:
    """:func:`user_errors` plus missing files (an unfinished run, a wrong path)."""
    with user_errors(debug):
        try:
            yield
        except FileNotFoundError as exc:
            if debug:
                raise
            error(str(exc))
            raise typer.Exit(2) from None


@contextmanager
def reported_warnings(console: Console) -> Iterator[None]:
    """Show warnings raised inside the block once each, as short yellow lines."""
    from disentkit._validation import DisentkitWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DisentkitWarning)
        try:
            yield
        finally:
            seen: set[str] = set()
            for w in caught:
                message = str(w.message)
                if message in seen:
                    continue
                seen.add(message)
                prefix = "" if issubclass(w.category, DisentkitWarning) else (
                    f"{w.category.__name__}: "
                )
                console.print(
                    Text.assemble(("warning: ", "bold yellow"), (prefix + message, "yellow")),
                    soft_wrap=True,
                )


def parse_metric_list(text: str | None) -> list[str] | None:
    """Parse ``--metrics``: comma-separated registry names, or ``all`` for every array metric.

    Returns ``None`` (the default suite) when ``text`` is ``None``. Unknown names raise a
    ``ValueError`` listing the known ones.

    Example:
        >>> parse_metric_list("mig, mig")
        ['mig']
    """
    if text is None:
        return None
    from disentkit.metrics import METRICS

    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return [name for name, info in METRICS.items() if info.kind == "array"]
    if not names:
        raise ValueError(
            f"--metrics must name at least one metric; known metrics: {', '.join(METRICS)}"
        )
    for name in names:
        METRICS[name]  # raises, listing the known metrics
    return list(dict.fromkeys(names))


def log_to_trackers(run_dir: str | os.PathLike[str], *, scores: bool = True,
                    figures: bool = True) -> list[str]:
    """Send a run's scores and figures to the trackers of its ``loggers`` section
    (:func:`disentkit.train.trackers.log_run_outputs`), saying so on stderr.

    The run is complete without it: a tracker that fails here is a yellow note, not an
    error. Returns the names of the trackers logged to.
    """
    if not (scores or figures):
        return []
    from disentkit.train.trackers import log_run_outputs  # pydantic, torch: when used

    err = stderr()
    try:
        with reported_warnings(err):
            names = log_run_outputs(run_dir, scores=scores, figures=figures)
    except Exception as exc:
        err.print(Text(f"could not log the results of {run_dir} to its trackers: {exc}",
                       style="yellow"), soft_wrap=True)
        return []
    if names:
        what = " and ".join(w for w, on in (("scores", scores), ("figures", figures)) if on)
        err.print(Text(f"logged the {what} to {', '.join(names)}", style="dim"),
                  soft_wrap=True)
    return names
