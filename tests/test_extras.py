"""The light install: extras named by the commands that need them, and a light ``import``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import disentkit
from disentkit import _extras
from disentkit._extras import EXTRAS, MissingExtraError, missing_modules, require
from disentkit.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("sklearn", "torch", "lightning", "matplotlib", "pandas", "ray", "pyarrow")
#: Makes the optional packages unimportable in a child process, as in a core install.
BLOCK_EXTRAS = (
    "import sys\n"
    "class _Uninstalled:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.partition('.')[0] in {'torch', 'lightning', 'matplotlib', 'pandas',\n"
    "                                      'ray', 'pyarrow'}:\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "sys.meta_path.insert(0, _Uninstalled())\n"
)


def _child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env_path = str(ROOT / "src")
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


@pytest.fixture
def no_train(monkeypatch):
    """The 'train' extra looks uninstalled (one of its modules cannot be found)."""
    monkeypatch.setitem(_extras.EXTRAS, "train", ("torch", "disentkit_no_such_module"))


# --------------------------------------------------------------------------- light imports


@pytest.mark.parametrize("module", ["disentkit", "disentkit.cli"])
def test_import_loads_no_heavy_package(module):
    proc = _child(f"import sys, {module}\n"
                  f"print([m for m in {HEAVY!r} if m in sys.modules])")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_lazy_reexports_are_the_real_objects():
    from disentkit.io import load_array
    from disentkit.metrics import METRICS, evaluate

    assert disentkit.evaluate is evaluate
    assert disentkit.METRICS is METRICS
    assert disentkit.load_array is load_array
    assert set(disentkit.__all__) <= set(dir(disentkit))
    with pytest.raises(AttributeError, match="no_such_name"):
        disentkit.no_such_name  # noqa: B018


def test_score_and_metrics_work_without_the_extras(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=(600, 2))
    np.save(tmp_path / "z.npy", y + 0.1 * rng.normal(size=y.shape))
    np.save(tmp_path / "y.npy", y)
    code = BLOCK_EXTRAS + "from disentkit.cli import main\nsys.argv[0] = 'disentkit'\nmain()\n"
    proc = _child(code, "score", str(tmp_path / "z.npy"), str(tmp_path / "y.npy"),
                  "--metrics", "mig,infomec", "--mode", "fast", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert {"mig", "infomec"} <= set(json.loads(proc.stdout)["metrics"])
    proc = _child(code, "metrics")
    assert proc.returncode == 0, proc.stderr
    assert "infomec" in proc.stdout
    proc = _child(code, "train", "--model", "ae", "--data", "xyobject_tiny")
    assert proc.returncode == 2
    assert "disentkit train needs the 'train' extra: pip install 'disentkit[train]'" in (
        proc.stderr)
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- the check


def test_require_names_the_extra(no_train):
    assert missing_modules("train") == ["disentkit_no_such_module"]
    with pytest.raises(MissingExtraError, match=r"^disentkit train needs the 'train' extra: "
                       r"pip install 'disentkit\[train\]' \(missing: disentkit_no_such"):
        require("train", what="disentkit train")
    assert isinstance(MissingExtraError("x"), ImportError)


def test_require_passes_when_installed():
    assert missing_modules("viz") == []
    require("viz", "train", what="figures")


def test_unknown_extra_is_refused():
    with pytest.raises(ValueError, match=r"extra must be one of .*; received 'gpu'"):
        missing_modules("gpu")


@pytest.mark.parametrize("args", [
    ["train", "--model", "ae", "--data", "xyobject_tiny"],
    ["evaluate", "no-such-run"],
    ["models"],
    ["report", "no-such-run"],
    ["study", "run", "no-such-spec.yaml"],
])
def test_commands_without_their_extra_exit_2_naming_it(no_train, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "needs the 'train' extra: pip install 'disentkit[train]'" in result.output
    assert "Traceback" not in result.output


def test_training_report_is_skipped_with_a_note_without_viz(monkeypatch, tmp_path, capsys):
    from disentkit.cli import report

    monkeypatch.setitem(_extras.EXTRAS, "viz", ("disentkit_no_such_module",))
    assert report.run_report_if_installed(tmp_path) is None
    assert "pip install 'disentkit[viz]'" in capsys.readouterr().err


# --------------------------------------------------------------------------- packaging


def test_pyproject_extras_match_the_checks():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    core = " ".join(project["dependencies"])
    for extra, modules in EXTRAS.items():
        assert extra in optional
        pins = " ".join(optional[extra])
        for module in modules:
            assert module in pins  # importable name = distribution name for these
            assert module not in core
    assert optional["all"] == [f"disentkit[{','.join(EXTRAS)}]"]


def _compat_tests() -> list[str]:
    """The ``COMPAT_TESTS`` of the Makefile: what `make test-compat` runs in venvs that hold
    only numpy, scipy, scikit-learn and the test tools."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("COMPAT_TESTS :="):
            return line.partition(":=")[2].split()
    raise AssertionError("the Makefile has no COMPAT_TESTS line")


def test_compat_tests_collect_without_the_packages_the_compat_venvs_lack() -> None:
    # `make test-compat` installs numpy, scipy, scikit-learn, joblib, threadpoolctl,
    # safetensors, pytest and hypothesis only: a test there that imports the CLI (typer), a
    # config (pydantic) or torch fails to collect. Caught here, in `make test`, before CI.
    absent = {"torch", "lightning", "matplotlib", "pandas", "ray", "pyarrow", "typer", "click",
              "rich", "pydantic", "yaml", "h5py", "PIL", "pooch", "mkdocs"}
    code = BLOCK_EXTRAS.replace(
        "{'torch', 'lightning', 'matplotlib', 'pandas',\n"
        "                                      'ray', 'pyarrow'}", repr(absent)
    ) + (
        "import pytest\n"
        "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))\n"
    )
    assert repr(absent) in code
    tests = _compat_tests()
    assert "tests/metrics" in tests
    result = subprocess.run(
        [sys.executable, "-c", code, *tests], capture_output=True, text=True, timeout=300,
        cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " tests collected" in result.stdout
