"""The run-directory layout: paths, the JSON readers, and that no other module spells a name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from disentkit import rundir
from disentkit.rundir import RunDir, StudyDir, read_json, read_json_or_none

SRC = Path(rundir.__file__).parent


def test_run_and_study_paths():
    run = RunDir("r")
    assert [p.as_posix() for p in (run.config, run.weights, run.model_json, run.metrics,
                                   run.figures, run.report, run.done)] == [
        "r/config.json", "r/model.safetensors", "r/model.json", "r/metrics.json", "r/figures",
        "r/report.html", "r/study_run.json"]
    study = StudyDir("s")
    assert study.spec.as_posix() == "s/study.yaml" and study.runs.as_posix() == "s/runs"


@pytest.mark.parametrize(("content", "message"), [
    (None, "could not read"),
    ("{broken", "is not valid JSON"),
    ("[1]", "should hold a JSON object"),
])
def test_read_json_names_the_file_in_every_error(tmp_path, content, message):
    path = tmp_path / "metrics.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        read_json(path)
    assert str(path) in str(err.value)
    assert read_json_or_none(path) is None


def _file_names() -> set[str]:
    names = {getattr(rundir, n) for n in rundir.__all__ if n.isupper()}
    return {str(n) for n in names if "." in str(n)}  # file names; bare folders are too common


def _code_strings(tree: ast.Module) -> list[tuple[int, str]]:
    """String constants of a module that are not documentation (docstrings and other bare
    string statements); f-string parts included."""
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_no_module_but_rundir_spells_a_run_directory_file_name():
    names = _file_names()
    assert {"config.json", "model.json", "metrics.json", "study_run.json"} <= names
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "rundir.py":
            continue
        for line, text in _code_strings(ast.parse(path.read_text(encoding="utf-8"))):
            found += [f"{path.relative_to(SRC)}:{line}: {name}" for name in names if name in text]
    assert found == []
