"""``disentkit data``: list, info, show, download, prepare."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from disentkit.cli import app
from disentkit.cli import data as cli_data
from disentkit.data import DATASETS, DatasetSource, FactorDataset, _base, data_root, get_dataset
from disentkit.data.show import factor_grid
from disentkit.registry import Registry

runner = CliRunner()
SMALL = ["-o", "image_size=8", "-o", "cache_dir=false"]  # a fast shapes3d_procedural


def _flat(text: str) -> str:
    """Output with line breaks and runs of spaces collapsed (rich wraps long lines)."""
    return re.sub(r"\s+", " ", text)


class Tiny(FactorDataset):
    name = "fake_official"
    factor_names = ("a", "b")
    factor_sizes = (2, 3)
    image_shape = (2, 2, 3)

    def __init__(self, path):
        self.source = DatasetSource(name=self.name, kind="official", path=str(path),
                                    sha256="ab" * 32, known_release=True)

    def images_from_factors(self, factors):
        f = self.check_factors(factors)
        return np.broadcast_to((40 * f[:, :1] + 10 * f[:, 1:])[:, None, None, :1],
                               (len(f), 2, 2, 3)).astype(np.uint8)


def _fake_factory(data_dir=None, **options):
    path = data_root(data_dir) / "fake_official" / "fake.npy"
    if not path.exists():
        raise FileNotFoundError(
            f"fake_official: the official files are not in {path.parent}; expected {path}"
        )
    return Tiny(path)


@pytest.fixture
def fake_registry(monkeypatch):
    """The real registry plus an official dataset 'fake_official' (file: fake.npy)."""
    reg: Registry = Registry("dataset")
    for name, info in DATASETS.items():
        reg.add(name, info)
    reg.add("fake_official", _base.DatasetInfo(
        name="fake_official", factory=_fake_factory, kind="official",
        description="a fake official dataset", factor_names=("a", "b"), factor_sizes=(2, 3),
        files=("fake.npy",), urls={"fake.npy": "https://example.org/fake.npy"},
        sha256={"fake.npy": ("cd" * 32,)}, licence="CC0",
        procedural_alternative="shapes3d_procedural",
    ))
    monkeypatch.setattr(_base, "DATASETS", reg)
    return reg


@pytest.fixture
def fake_official_module(monkeypatch):
    calls = []

    def download(name, data_dir=None, *, progress=None, force=False):
        calls.append(("download", name, data_dir, force))
        progress("download", 0, 2000)
        progress("download", 2000, 2000)
        path = data_root(data_dir) / name / "fake.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        return [path]

    def prepare(name, data_dir=None, progress=None, *, force=False):
        calls.append(("prepare", name, data_dir, force))
        _fake_factory(data_dir)  # missing files fail as the real module does
        progress("hash", 1, 1)
        progress("convert", 6, 6)
        return data_root(data_dir) / name / "prepared"

    module = SimpleNamespace(download=download, prepare=prepare)
    monkeypatch.setattr(cli_data, "_official_module", lambda: module)
    return calls


# --------------------------------------------------------------------------- list


def test_list_shows_every_registered_dataset():
    result = runner.invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["name"] for e in entries] == list(DATASETS)
    for e in entries:
        info = DATASETS[e["name"]]
        assert e["n_images"] == int(np.prod(info.factor_sizes))
        assert e["factor_sizes"] == list(info.factor_sizes)
        assert e["files"] == "-" if info.kind == "procedural" else e["files"] != "-"
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "shapes3d_procedural" in text and "480,000" in text and "floor_hue 10" in text


def test_list_reports_whether_official_files_are_present(fake_registry, tmp_path):
    args = ["data", "list", "--json", "--data-dir", str(tmp_path)]
    entry = {e["name"]: e for e in json.loads(runner.invoke(app, args).output)}
    assert entry["fake_official"]["files"] == "missing"
    (tmp_path / "fake_official").mkdir()
    (tmp_path / "fake_official" / "fake.npy").write_bytes(b"x")
    entry = {e["name"]: e for e in json.loads(runner.invoke(app, args).output)}
    assert entry["fake_official"]["files"] == "present"


def test_data_dir_defaults_to_the_environment(fake_registry, tmp_path, monkeypatch):
    (tmp_path / "fake_official").mkdir()
    (tmp_path / "fake_official" / "fake.npy").write_bytes(b"x")
    monkeypatch.setenv("DISENTKIT_DATA", str(tmp_path))
    result = runner.invoke(app, ["data", "list", "--json"])
    entry = {e["name"]: e for e in json.loads(result.output)}
    assert entry["fake_official"]["files"] == "present"
    result = runner.invoke(app, ["data", "info", "fake_official", "--json"])
    assert json.loads(result.output)["source"]["path"] == str(tmp_path / "fake_official" /
                                                             "fake.npy")


# --------------------------------------------------------------------------- info


def test_info_of_a_procedural_dataset():
    result = runner.invoke(app, ["data", "info", "shapes3d_procedural", *SMALL])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    for name in DATASETS["shapes3d_procedural"].factor_names:
        assert name in text
    assert "480,000" in text and "8 × 8 × 3" in text and "procedural" in text
    assert "0.75, 0.8214" in text  # scale values
    result = runner.invoke(app, ["data", "info", "shapes3d_procedural", *SMALL, "--json"])
    meta = json.loads(result.output)
    expected = get_dataset("shapes3d_procedural", image_size=8, cache_dir=False).info()
    assert meta["factors"] == expected["factors"]
    assert meta["image_shape"] == [8, 8, 3] and meta["n_images"] == 480_000
    assert meta["source"] == expected["source"] and meta["kind"] == "procedural"


def test_info_of_an_official_dataset_with_files(fake_registry, tmp_path):
    (tmp_path / "fake_official").mkdir()
    (tmp_path / "fake_official" / "fake.npy").write_bytes(b"x")
    result = runner.invoke(app, ["data", "info", "fake_official", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "sha256: " + "ab" * 32 in text and "known_release: True" in text
    assert "procedural alternative: shapes3d_procedural" in text


def test_info_of_an_official_dataset_without_files_says_where_to_put_them(
    fake_registry, tmp_path
):
    result = runner.invoke(app, ["data", "info", "fake_official", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert f"put it at {tmp_path / 'fake_official' / 'fake.npy'}" in text
    assert "https://example.org/fake.npy" in text and "cd" * 32 in text
    assert re.search(r"\ba\W+2\W+b\W+3\b", text) and "files missing" in text
    assert "expected" in _flat(result.stderr)
    meta = json.loads(runner.invoke(
        app, ["data", "info", "fake_official", "--data-dir", str(tmp_path), "--json"]
    ).output)
    assert meta["files_present"] is False and meta["n_images"] == 6
    assert meta["files"] == {"fake.npy": str(tmp_path / "fake_official" / "fake.npy")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "info", "nope"], "unknown dataset 'nope'"),
        (["data", "info", "shapes3d_procedural", "-o", "colour=1"], "colour"),
        (["data", "info", "shapes3d_procedural", "-o", "image_size"], "NAME=VALUE"),
        (["data", "show", "shapes3d_procedural", "-o", "image_size=0"], "image_size"),
        (["data", "download", "shapes3d_procedural"], "nothing to download"),
        (["data", "prepare", "shapes3d_procedural"], "nothing to prepare"),
    ],
)
def test_bad_input_is_one_red_paragraph_with_exit_code_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ")
    assert message in _flat(result.stderr)


def test_debug_shows_the_exception():
    result = runner.invoke(app, ["data", "info", "nope", "--debug"])
    assert isinstance(result.exception, KeyError)


# --------------------------------------------------------------------------- show


def test_show_writes_name_png_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["data", "show", "shapes3d_procedural", *SMALL])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "shapes3d_procedural.png"
    ds = get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)
    with Image.open(tmp_path / "shapes3d_procedural.png") as img:
        np.testing.assert_array_equal(np.asarray(img), factor_grid(ds, seed=0, label=True))


def test_show_out_seed_and_layout_options(tmp_path):
    out = tmp_path / "pics" / "s.png"
    args = ["data", "show", "shapes3d_procedural", *SMALL, "--out", str(out), "--seed", "5",
            "--n-per-factor", "3", "--zoom", "2", "--no-label"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    ds = get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)
    with Image.open(out) as img:
        np.testing.assert_array_equal(
            np.asarray(img), factor_grid(ds, seed=5, n_per_factor=3, zoom=2)
        )


def test_show_of_missing_official_files_fails_with_the_message(fake_registry, tmp_path):
    result = runner.invoke(
        app, ["data", "show", "fake_official", "--data-dir", str(tmp_path),
              "--out", str(tmp_path / "x.png")]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: fake_official: the official files are not in")
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- download / prepare


def test_download_and_prepare_call_the_official_module(
    fake_registry, fake_official_module, tmp_path
):
    result = runner.invoke(app, ["data", "download", "fake_official", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "fake_official" / "fake.npy")
    assert "downloading" in result.stderr and "2.0 kB" in result.stderr
    result = runner.invoke(
        app, ["data", "prepare", "fake_official", "--data-dir", str(tmp_path), "--force"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "fake_official" / "prepared")
    assert "converting" in result.stderr and "6 / 6" in result.stderr
    assert fake_official_module == [
        ("download", "fake_official", tmp_path, False),
        ("prepare", "fake_official", tmp_path, True),
    ]


def test_prepare_without_files_is_exit_code_2(fake_registry, fake_official_module, tmp_path):
    result = runner.invoke(app, ["data", "prepare", "fake_official", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: fake_official: the official files are not in")


def test_network_failures_are_exit_code_1(fake_registry, monkeypatch, tmp_path):
    def offline(name, data_dir=None, *, progress=None):
        raise ConnectionError(f"{name}: cannot reach https://example.org/fake.npy")

    monkeypatch.setattr(cli_data, "_official_module", lambda: SimpleNamespace(download=offline))
    result = runner.invoke(app, ["data", "download", "fake_official"])
    assert result.exit_code == 1, result.output
    assert "cannot reach" in result.stderr


def test_without_the_official_module_download_fails_clearly(fake_registry, monkeypatch):
    monkeypatch.setattr(cli_data, "_official_module", lambda: None)
    result = runner.invoke(app, ["data", "download", "fake_official"])
    assert result.exit_code == 1, result.output
    assert "cannot download official datasets" in _flat(result.stderr)


# --------------------------------------------------------------------------- the real loaders


def test_real_official_dataset_without_files(tmp_path):
    pytest.importorskip("disentkit.data.official", reason="official loaders not present yet")
    if "shapes3d" not in DATASETS:
        pytest.skip("shapes3d is not registered")
    root = str(tmp_path)
    result = runner.invoke(app, ["data", "info", "shapes3d", "--data-dir", root])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "shapes3d" / "3dshapes.h5") in _flat(result.output)
    result = runner.invoke(app, ["data", "show", "shapes3d", "--data-dir", root])
    assert result.exit_code == 2 and "disentkit data download shapes3d" in _flat(result.stderr)
    result = runner.invoke(app, ["data", "prepare", "shapes3d", "--data-dir", root])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    entries = json.loads(runner.invoke(app, ["data", "list", "--json", "--data-dir", root]).output)
    assert {e["name"]: e["files"] for e in entries}["shapes3d"] == "missing"


def test_parse_dataset_options():
    assert cli_data.parse_dataset_options(["a=1", "b=[1, 2]", "c=x=y", "d="]) == {
        "a": 1, "b": [1, 2], "c": "x=y", "d": "",
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        cli_data.parse_dataset_options(["=3"])
