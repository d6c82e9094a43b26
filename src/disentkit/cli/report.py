"""``disentkit report RUN``: write the run's self-contained HTML page, ``RUN/report.html``.

Thin: it calls :func:`disentkit.viz.report.write_report` and shows what is being rendered
(a live status line on a terminal, one dim line per step elsewhere). ``disentkit train``
and ``disentkit evaluate`` call :func:`run_report` when they finish, unless told
``--no-report``. Bad input ends with one red paragraph on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from disentkit._console import error, stderr, stdout
from disentkit._extras import missing_modules, require
from disentkit.cli._common import log_to_trackers, reported_warnings, run_errors
from disentkit.rundir import FIGURES_DIR, REPORT_NAME

__all__ = ["report_command", "run_report", "run_report_if_installed"]


def run_report(run_dir: Path, *, figures: bool = True) -> Path:
    """Write ``run_dir/report.html`` with progress on stderr; print where it is on stdout.

    Raises :class:`~disentkit._extras.MissingExtraError` without the 'viz' extra (and,
    to render figures from the model, the 'train' extra)."""
    require("viz", what="the run report")
    if figures:
        require("train", what="the run report's figures (--no-figures: without them)")
    from disentkit.viz.report import write_report

    err, out = stderr(), stdout()
    with reported_warnings(err):
        if err.is_terminal:
            with err.status("writing the report") as status:
                path = write_report(
                    run_dir, render_figures=figures,
                    progress=lambda label: status.update(f"rendering {escape(label)}"),
                )
        else:
            path = write_report(
                run_dir, render_figures=figures,
                progress=lambda label: err.print(Text(f"rendering {label}", style="dim"),
                                                 soft_wrap=True),
            )
    out.print(f"Wrote the report to {path.resolve()}", soft_wrap=True)
    return path


def run_report_if_installed(run_dir: Path) -> Path | None:
    """:func:`run_report` after training or evaluation; without the 'viz' extra, a yellow
    note saying how to get the report instead of an error (the run itself is complete)."""
    if missing_modules("viz"):
        stderr().print(Text(f"no {REPORT_NAME}: the run report needs the 'viz' extra: "
                            "pip install 'disentkit[viz]'", style="yellow"), soft_wrap=True)
        return None
    return run_report(run_dir)


def report_command(
    run: Annotated[
        Path, typer.Argument(help="A run directory.", show_default=False)
    ],
    figures: Annotated[
        bool,
        typer.Option("--figures/--no-figures",
                     help="Render the run's figures first (--no-figures: embed those already "
                     f"in RUN/{FIGURES_DIR})."),
    ] = True,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Write RUN/report.html: config, scores and figures on one self-contained page (the
    figures also go to the run's trackers)."""
    with run_errors(debug):
        try:
            run_report(run, figures=figures)
        except OSError as exc:  # FileNotFoundError is handled by run_errors
            if debug or isinstance(exc, FileNotFoundError):
                raise
            error(f"could not write the report of {str(run)!r}: {exc}")
            raise typer.Exit(2) from None
        if figures:  # freshly drawn: to the run's trackers too
            log_to_trackers(run, scores=False)
