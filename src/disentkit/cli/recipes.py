"""``disentkit recipes``: the published settings shipped as named, versioned run configs.

- ``disentkit recipes list``: every recipe with its model, dataset and key values
  (``--json`` for scripts).
- ``disentkit recipes show NAME``: the recipe file's citations, then the run config it
  resolves to (shared bases merged, every run-config default written out; the model's own
  defaults are written out when the run starts, or by ``train --recipe NAME
  --print-config``). The printed YAML is accepted by ``train --config``.

Train one with ``disentkit train --recipe NAME [--steps N] [--set KEY=VALUE ...]``; start
a study's runs from one with ``recipe:`` in its spec.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from disentkit._console import stdout
from disentkit._extras import require
from disentkit.cli._common import user_errors

recipes_app = typer.Typer(
    help="Published settings as named run configs: list them, show one "
         "(train one with `disentkit train --recipe NAME`).",
    no_args_is_help=True,
)

#: model options shown in the list, where a recipe sets them
_KEY_OPTIONS = ("arch", "n_latents", "n_values", "weight_decay", "beta")


def _summary(name: str) -> dict[str, Any]:
    from disentkit.recipes import load_recipe

    tree = load_recipe(name)
    model = tree.get("model") or {}
    data = tree.get("data") or {}
    return {
        "recipe": name,
        "version": tree["recipe"].rsplit("@", 1)[1],
        "model": model.get("name") if isinstance(model, dict) else model,
        "data": data.get("name") if isinstance(data, dict) else data,
        "steps": tree.get("steps"),
        "batch_size": tree.get("batch_size"),
        "lr": tree.get("lr"),
        "options": {k: model[k] for k in _KEY_OPTIONS if isinstance(model, dict) and k in model},
    }


@recipes_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """List every shipped recipe: model, dataset, steps, batch size and key options."""
    from disentkit.recipes import list_recipes

    out = stdout()
    with user_errors(debug):
        rows = [_summary(name) for name in list_recipes()]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title=f"{len(rows)} recipe(s)",
                      caption="disentkit recipes show NAME: values and their sources")
        table.add_column("recipe", style="bold", overflow="fold")
        table.add_column("v", justify="right")
        table.add_column("steps", justify="right")
        table.add_column("batch", justify="right")
        table.add_column("lr", justify="right")
        table.add_column("model options", overflow="fold")
        for r in rows:
            options = ", ".join(f"{k}={v}" for k, v in r["options"].items())
            table.add_row(Text(r["recipe"]), str(r["version"]),
                          f"{r['steps']:,}" if r["steps"] else "-",
                          str(r["batch_size"] or "-"), str(r["lr"] if r["lr"] else "-"),
                          Text(options))
        out.print(table)


@recipes_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Recipe name, e.g. qlae2023/qlae/shapes3d.")],
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Print a recipe: its citations, then the run config it resolves to (YAML)."""
    import yaml

    from disentkit.recipes import load_recipe, recipe_text
    from disentkit.train.config import build_config

    with user_errors(debug):
        require("train", what="disentkit recipes show")  # names are checked in the registries
        comments = [line for line in recipe_text(name).splitlines() if line.startswith("#")]
        cfg = build_config(load_recipe(name))
        typer.echo("\n".join(comments))
        typer.echo(f"# resolved run config of {cfg.recipe} (train it: disentkit train "
                   f"--recipe {name})")
        typer.echo(yaml.safe_dump(cfg.to_dict(), sort_keys=False), nl=False)
