"""``disentkit models [NAME]``: the model catalogue.

Without a name, every registered model with its one-line description; with a name, its
options (type, default, documentation), whether it trains vectorised, and its reference.
``--json`` prints the same for scripts.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from disentkit._atomic import jsonable
from disentkit._console import stdout
from disentkit._extras import require
from disentkit.cli._common import user_errors


def models_command(
    name: Annotated[str | None, typer.Argument(help="A model's registry name, for its "
                                               "options.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """List the registered models, or show one model's options."""
    with user_errors(debug):
        require("train", what="disentkit models")
    from disentkit.models.catalogue import describe_model, list_models

    out = stdout()
    with user_errors(debug):
        if name is None:
            entries = list_models()
            if as_json:
                typer.echo(json.dumps(entries, indent=2))
                return
            table = Table(title=f"{len(entries)} registered model(s)",
                          caption="disentkit models NAME: its options; set them with "
                                  "--set model.OPTION=VALUE")
            table.add_column("model", style="bold", no_wrap=True)
            table.add_column("description", overflow="fold")
            for e in entries:
                table.add_row(e["name"], Text(e["description"]))
            out.print(table)
            return
        entry = describe_model(name)
        if as_json:
            typer.echo(json.dumps(jsonable(entry), indent=2))
            return
        out.print(Text.assemble((entry["name"], "bold"), f": {entry['description']}"),
                  soft_wrap=True)
        if entry["reference"]:
            out.print(f"reference: {entry['reference']}", soft_wrap=True)
        out.print(f"trains vectorised (--seeds): {'yes' if entry['vectorizable'] else 'no'}")
        table = Table(title="options (--set model.OPTION=VALUE)")
        table.add_column("option", style="bold", no_wrap=True)
        table.add_column("type", overflow="fold")
        table.add_column("default", overflow="fold")
        table.add_column("meaning", overflow="fold")
        for o in entry["options"]:
            table.add_row(o["name"], Text(o["type"]), Text(repr(o["default"])), Text(o["doc"]))
        out.print(table)
