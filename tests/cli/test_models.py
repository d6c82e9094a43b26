"""`disentkit models [NAME] [--json]`: the catalogue follows the registry."""

from __future__ import annotations

import dataclasses
import json

from typer.testing import CliRunner

from disentkit.cli import app
from disentkit.models import MODELS

runner = CliRunner()


def test_every_registered_model_is_listed_with_its_description() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["name"] for e in entries] == sorted(MODELS)
    assert all(e["description"] for e in entries)
    assert "qlae" in runner.invoke(app, ["models"], terminal_width=160).output


def test_a_models_options_come_from_its_config_with_their_comments() -> None:
    result = runner.invoke(app, ["models", "qlae", "--json"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)
    names = [o["name"] for o in entry["options"]]
    assert names == [f.name for f in dataclasses.fields(MODELS["qlae"].config_cls)]
    by_name = {o["name"]: o for o in entry["options"]}
    assert by_name["weight_decay"]["default"] == 0.1
    assert by_name["init_range"]["default"] == [-0.5, 0.5]
    assert "codebook" in by_name["n_values"]["doc"]
    assert entry["vectorizable"] is True
    assert json.loads(runner.invoke(app, ["models", "vq_vae", "--json"]).output)[
        "vectorizable"] is False
    # every option of every model is documented in its source
    for name in MODELS:
        undocumented = [o["name"] for o in json.loads(runner.invoke(
            app, ["models", name, "--json"]).output)["options"] if not o["doc"]]
        assert undocumented == [], (name, undocumented)


def test_unknown_model_suggests_the_close_name() -> None:
    result = runner.invoke(app, ["models", "qlea"])
    assert result.exit_code == 2 and "qlae" in result.output
