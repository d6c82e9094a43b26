"""The same answer to damaged files everywhere: official dataset files and run files that
are truncated, corrupt or hold wrong types each give one ``ValueError`` line naming the
file — never a traceback from h5py, safetensors or torch, never a silent wrong number.

Damage is generated (hypothesis): truncation points, flipped bytes, and wrong-typed values
in the JSON files of a run."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disentkit import DisentkitWarning
from disentkit.data import get_dataset, official
from disentkit.data.official import prepare
from disentkit.train import fit, load_model
from tests.data import fixtures as fx

SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fresh(tmp_path: Path, name: str) -> Path:
    """An empty ``<root>/<name>`` folder for one generated example."""
    root = tmp_path / f"ex{len(list(tmp_path.iterdir()))}"
    (root / name).mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("released")
    fx.write_shapes3d(d / "3dshapes.h5")
    fx.write_mpi3d(d / "mpi3d_toy.npz")
    fx.write_dsprites_npz(d / f"{fx.DSPRITES_NAME}.npz", d / "UNPICKLED")
    return d


def _open(name: str, root: Path) -> tuple[object, np.ndarray]:
    """Everything a user does with an official file: prepare if needed, open, read."""
    if name == "shapes3d":
        prepare(name, data_dir=root)
    ds = get_dataset(name, data_dir=root)
    return ds, ds.images(np.arange(len(ds) - 3, len(ds)))


def _read(name: str, root: Path) -> np.ndarray:
    return _open(name, root)[1]


OFFICIAL = [("shapes3d", "3dshapes.h5"), ("mpi3d_toy", "mpi3d_toy.npz"),
            ("dsprites", f"{fx.DSPRITES_NAME}.npz")]


@pytest.mark.parametrize(("name", "file"), OFFICIAL)
@SETTINGS
@given(fraction=st.floats(0.0, 0.995))
def test_truncated_official_files_name_the_file(released, tmp_path, name, file, fraction):
    data = (released / file).read_bytes()
    root = _fresh(tmp_path, name)
    (root / name / file).write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError) as err:
        _read(name, root)
    assert file in str(err.value)


@pytest.mark.parametrize(("name", "file"), OFFICIAL[:2])
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_corrupt_official_files_are_refused_or_read_exactly(released, tmp_path, name, file,
                                                           seed):
    """Flipped bytes either break the container (refused, naming the file) or land in
    pixels. Then, for a dataset whose releases' checksums are registered, the loader says
    the file matches no known release (a warning naming the file); for one without, the
    file's sha256 is recorded in the dataset's source (and so in every metrics.json), so
    a damaged file is never read without a trace."""
    data = bytearray((released / file).read_bytes())
    rng = np.random.default_rng(seed)
    for pos in rng.integers(0, len(data), 8):
        data[pos] ^= 0xFF
    root = _fresh(tmp_path, name)
    (root / name / file).write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DisentkitWarning)
        try:
            ds, images = _open(name, root)
        except ValueError as exc:
            assert file in str(exc)
            return
    assert images.dtype == np.uint8 and images.shape[0] == 3
    if official._SPECS[name].sha256:
        said = [str(w.message) for w in caught if issubclass(w.category, DisentkitWarning)]
        assert any(file in m and "matches no known release" in m for m in said), said
    else:
        assert ds.source.sha256 == hashlib.sha256(bytes(data)).hexdigest()


@pytest.mark.parametrize(
    ("name", "file", "arrays", "words"),
    [
        ("mpi3d_toy", "mpi3d_toy.npz",
         {"images": fx.coded_images(fx.MPI3D_SIZES).astype(np.float32)}, "uint8"),
        ("mpi3d_toy", "mpi3d_toy.npz", {"images": fx.coded_images(fx.MPI3D_SIZES)[:-7]},
         "1,036,800"),
        ("mpi3d_toy", "mpi3d_toy.npz", {"imgs": fx.coded_images(fx.MPI3D_SIZES)}, "images"),
    ],
)
def test_wrong_arrays_in_official_files(tmp_path, name, file, arrays, words):
    root = _fresh(tmp_path, name)
    np.savez(root / name / file, **arrays)
    with pytest.raises(ValueError, match=words) as err:
        _read(name, root)
    assert file in str(err.value)


# -------------------------------------------------------------------------- run files


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return fit({"model": "ae", "data": "xyobject_tiny", "steps": 4, "batch_size": 8,
                "checkpoint_every": 2, "model_options": {"n_latents": 3}},
               run_dir=tmp_path_factory.mktemp("run") / "ae", progress=False)


WRONG = st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=2),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                  st.floats(allow_nan=True), st.booleans(), st.none())


@SETTINGS
@given(key=st.sampled_from(["model", "config", "config.n_latents", "config.image_shape",
                            "config.arch"]), value=WRONG)
def test_model_json_with_wrong_types(run, tmp_path, key, value):
    copy = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
    shutil.copytree(run, copy)
    record = json.loads((copy / "model.json").read_text())
    head, _, sub = key.partition(".")
    (record[head] if sub else record)[sub or head] = value
    (copy / "model.json").write_text(json.dumps(record))
    try:
        model = load_model(copy)
    except ValueError as exc:
        assert "model.json" in str(exc) or "model.safetensors" in str(exc)
        assert "\n" not in str(exc)
    else:  # a value that coerces to the right one (e.g. 3.0 for 3) loads the same model
        assert model.config_dict() == load_model(run).config_dict()


@SETTINGS
@given(fraction=st.floats(0.0, 0.99))
def test_truncated_weights(run, tmp_path, fraction):
    copy = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
    shutil.copytree(run, copy)
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match=r"model\.safetensors"):
        load_model(copy)


def test_weights_that_do_not_match_the_config(run, tmp_path):
    copy = tmp_path / "r"
    shutil.copytree(run, copy)
    record = json.loads((copy / "model.json").read_text())
    record["config"]["n_latents"] = 5
    (copy / "model.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"does not match model\.safetensors") as err:
        load_model(copy)
    assert "model.json" in str(err.value) and "[5," in str(err.value)
    assert "\n" not in str(err.value)


@SETTINGS
@given(key=st.sampled_from(["steps", "batch_size", "seed", "optimizer", "eval",
                            "model_options"]), value=WRONG)
def test_config_json_with_wrong_types_on_resume(run, tmp_path, key, value):
    copy = tmp_path / f"r{len(list(tmp_path.iterdir()))}"
    shutil.copytree(run, copy)
    saved = json.loads((copy / "config.json").read_text())
    config = {**saved, "steps": 6}
    saved[key] = value
    (copy / "config.json").write_text(json.dumps(saved))
    try:
        fit(config, run_dir=copy, resume=True, progress=False)
    except ValueError as exc:
        assert "config.json" in str(exc)
