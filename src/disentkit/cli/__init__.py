"""The ``disentkit`` command line.

One module per command group, all registered on :data:`app` here:

- :mod:`~disentkit.cli.score`: ``disentkit score LATENTS [FACTORS]`` (the metric suite on
  array files), ``disentkit metrics`` (the metric registry), ``disentkit demo`` (the suite
  on a built-in example);
- :mod:`~disentkit.cli.train`: ``disentkit train`` and ``disentkit evaluate``;
- :mod:`~disentkit.cli.report`: ``disentkit report RUN``;
- :mod:`~disentkit.cli.data`: ``disentkit data list|info|show|download|prepare``;
- :mod:`~disentkit.cli.study`: ``disentkit study run|list|collect|report``;
- :mod:`~disentkit.cli._common`: the helpers they share (bad input as one red paragraph,
  warnings shown once, ``--metrics`` parsing).

Bad input (unreadable files, invalid arrays, unknown metrics or options) ends with one red
paragraph on stderr and exit code 2; ``--debug`` shows the traceback instead. A command whose
optional extra is missing (:mod:`disentkit._extras`) says which to install, also with exit
code 2. Importing this package imports neither torch nor numpy, scikit-learn or the metrics:
each command imports what it needs when it runs, so ``disentkit --help`` starts fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from disentkit._version import __version__
from disentkit.cli import score
from disentkit.cli._common import parse_metric_list
from disentkit.cli.data import data_app
from disentkit.cli.models import models_command
from disentkit.cli.recipes import recipes_app
from disentkit.cli.report import report_command
from disentkit.cli.score import demo, list_metrics, parse_options
from disentkit.cli.study import study_app
from disentkit.cli.train import evaluate_command, train_command

__all__ = ["app", "main", "parse_metric_list", "parse_options"]

app = typer.Typer(
    name="disentkit",
    help="Learn, measure and look at disentangled representations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")
app.add_typer(recipes_app, name="recipes")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"disentkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Learn, measure and look at disentangled representations."""


app.command("score")(score.score)
app.command("metrics")(list_metrics)
app.command("models")(models_command)
app.command()(demo)
app.command("train")(train_command)
app.command("evaluate")(evaluate_command)
app.command("report")(report_command)


def main() -> None:
    """Entry point of the ``disentkit`` console script."""
    app(prog_name="disentkit")
