"""The documentation site: the tutorial's code runs, and the site builds strictly with
every exported name in the API reference."""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from disentkit.cli import app

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"

#: the packages that have a page in the API reference (docs/api/*.md)
DOCUMENTED = (
    "disentkit",
    "disentkit.metrics",
    "disentkit.data",
    "disentkit.models",
    "disentkit.train",
    "disentkit.study",
    "disentkit.viz",
    "disentkit.io",
    "disentkit.recipes",
)


def code_blocks(markdown: str, language: str = "python") -> list[str]:
    """The bodies of the fenced code blocks of one language in a Markdown text, in order."""
    pattern = rf"^```{language}\n(.*?)^```"
    return re.findall(pattern, markdown, flags=re.DOTALL | re.MULTILINE)


def test_code_blocks_are_found() -> None:
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert code_blocks(text) == ["x = 1\n", "y = x\n"]
    assert code_blocks(text, "bash") == ["ls\n"]


def test_tutorial_code_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="the tutorial's encoder is a torch module")
    text = TUTORIAL.read_text(encoding="utf-8")
    blocks = code_blocks(text)
    assert len(blocks) >= 5, "the tutorial lost its code blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "tutorial"}
    for number, block in enumerate(blocks, 1):
        # one namespace for all blocks: they run in order, as one script
        exec(compile(block, f"{TUTORIAL.name}, python block {number}", "exec"), namespace)
    assert namespace["latents"].shape == (1000, 6)  # type: ignore[attr-defined]

    # "the same from the command line ... gives the same numbers": the first command of
    # the tutorial's shell block, on the files its last Python block saved
    command = shlex.split(code_blocks(text, "bash")[0].splitlines()[0], comments=True)
    assert command[:2] == ["disentkit", "score"], command
    folder = Path(namespace["folder"])  # type: ignore[arg-type]
    args = [str(folder / a) if a.endswith(".npy") else a for a in command[1:]]
    args = [str(tmp_path / a) if a.endswith(".json") else a for a in args]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))["metrics"]
    for row in namespace["out"].rows():  # type: ignore[attr-defined]
        entry = written[row.metric]
        assert entry[row.score] == pytest.approx(row.value, abs=1e-9), row.key
        assert entry["metric_id"] == row.metric_id
        for baseline, value in row.baselines.items():
            assert entry["baselines"][baseline][row.score] == pytest.approx(value, abs=1e-9)


def _anchors(site: Path) -> set[str]:
    found: set[str] = set()
    for page in (site / "api").glob("*/index.html"):
        found |= set(re.findall(r'id="(disentkit[\w.]*)"', page.read_text(encoding="utf-8")))
    return found


def _documented_as(package: str, name: str) -> set[str]:
    """The anchors under which the name ``package.name`` may be documented: as exported
    there, as exported by another documented package, or at its home module."""
    obj = getattr(importlib.import_module(package), name)
    ids = {f"{package}.{name}"}
    ids |= {
        f"{other}.{name}"
        for other in DOCUMENTED
        if getattr(importlib.import_module(other), name, None) is obj
    }
    if isinstance(getattr(obj, "__module__", None), str) and hasattr(obj, "__qualname__"):
        ids.add(f"{obj.__module__}.{obj.__qualname__}")
    return ids


def test_site_builds_strictly_with_every_export(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="install the docs tools: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("torch", reason="the export check imports disentkit.models")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}"

    anchors = _anchors(site)
    missing = [
        f"{package}.{name}"
        for package in DOCUMENTED
        for name in importlib.import_module(package).__all__
        if not name.startswith("__") and not _documented_as(package, name) & anchors
    ]
    assert not missing, f"exported but absent from the API reference: {missing}"

    metrics_page = (site / "api" / "metrics" / "index.html").read_text(encoding="utf-8")
    # docstrings read as written: Example sections shown as code, Sphinx roles as links
    assert "&gt;&gt;&gt;" in metrics_page
    assert ":func:" not in metrics_page and ":class:" not in metrics_page
    assert 'href="#disentkit.metrics.MIGResult"' in metrics_page
    assert (site / "tutorial" / "index.html").is_file()
