"""Reading latents and factors from files: formats, key inference and error messages."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from safetensors.numpy import save_file

from disentkit.io import InputError, InputFileNotFoundError, load_array, load_pair


@pytest.fixture
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(20, 3))
    factors = rng.integers(0, 4, size=(20, 2))
    return latents, factors


class _Trap:
    """Unpickling this creates a directory: proof that a loader unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


# --------------------------------------------------------------------------- round trips


def test_npy_round_trip(tmp_path, arrays):
    latents, _ = arrays
    np.save(tmp_path / "z.npy", latents)
    out = load_array(tmp_path / "z.npy")
    assert out.dtype == latents.dtype
    np.testing.assert_array_equal(out, latents)


def test_npy_extension_is_case_insensitive(tmp_path, arrays):
    latents, _ = arrays
    with (tmp_path / "Z.NPY").open("wb") as fh:
        np.save(fh, latents)
    np.testing.assert_array_equal(load_array(tmp_path / "Z.NPY"), latents)


def test_npz_single_array_and_key(tmp_path, arrays):
    latents, factors = arrays
    np.savez(tmp_path / "one.npz", anything=latents)
    np.testing.assert_array_equal(load_array(tmp_path / "one.npz"), latents)
    np.savez_compressed(tmp_path / "two.npz", a=latents, b=factors)
    np.testing.assert_array_equal(load_array(tmp_path / "two.npz", key="b"), factors)


def test_safetensors_round_trip(tmp_path, arrays):
    latents, factors = arrays
    save_file(
        {"latents": latents.astype(np.float32), "factors": factors.astype(np.int32)},
        str(tmp_path / "run.safetensors"),
    )
    out = load_array(tmp_path / "run.safetensors", key="latents")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, latents.astype(np.float32))
    lat, fac = load_pair(tmp_path / "run.safetensors")
    np.testing.assert_array_equal(fac, factors)
    np.testing.assert_array_equal(lat, latents.astype(np.float32))


def test_csv_without_header(tmp_path, arrays):
    latents, _ = arrays
    np.savetxt(tmp_path / "z.csv", latents, delimiter=",", fmt="%.17g")
    np.testing.assert_array_equal(load_array(tmp_path / "z.csv"), latents)


def test_csv_with_header_comments_and_bom(tmp_path, arrays):
    _, factors = arrays
    body = "\n".join(",".join(str(v) for v in row) for row in factors)
    text = "\ufeff# exported factors\n\nshape,\"scale\"\n" + body + "\n"
    (tmp_path / "f.csv").write_text(text, encoding="utf-8")
    out = load_array(tmp_path / "f.csv")
    assert out.shape == factors.shape
    np.testing.assert_array_equal(out, factors)


@pytest.mark.parametrize("name, sep", [("z.txt", " "), ("z.tsv", "\t"), ("z.csv", "  ")])
def test_whitespace_separated_text(tmp_path, arrays, name, sep):
    latents, _ = arrays
    header = sep.join(f"z{i}" for i in range(latents.shape[1]))
    np.savetxt(tmp_path / name, latents, delimiter=sep, header=header, comments="", fmt="%.17g")
    np.testing.assert_array_equal(load_array(tmp_path / name), latents)


def test_single_column_csv_is_two_dimensional(tmp_path):
    (tmp_path / "f.csv").write_text("label\n0\n1\n2\n")
    assert load_array(tmp_path / "f.csv").shape == (3, 1)


# --------------------------------------------------------------------------- pairs


@pytest.mark.parametrize(
    "lat_name, fac_name",
    [("latents", "factors"), ("z", "y"), ("codes", "labels"), ("Representation", "sources")],
)
def test_pair_from_one_npz_by_conventional_names(tmp_path, arrays, lat_name, fac_name):
    latents, factors = arrays
    np.savez(tmp_path / "run.npz", **{fac_name: factors, lat_name: latents})
    lat, fac = load_pair(tmp_path / "run.npz")
    np.testing.assert_array_equal(lat, latents)
    np.testing.assert_array_equal(fac, factors)


def test_pair_two_arrays_one_named(tmp_path, arrays):
    latents, factors = arrays
    np.savez(tmp_path / "run.npz", mu=latents, factors=factors)
    lat, fac = load_pair(tmp_path / "run.npz")
    np.testing.assert_array_equal(lat, latents)
    np.testing.assert_array_equal(fac, factors)


def test_pair_explicit_keys(tmp_path, arrays):
    latents, factors = arrays
    np.savez(tmp_path / "run.npz", a=latents, b=factors, c=latents[:5])
    lat, fac = load_pair(tmp_path / "run.npz", latents_key="a", factors_key="b")
    np.testing.assert_array_equal(lat, latents)
    np.testing.assert_array_equal(fac, factors)


def test_pair_from_two_files_of_different_formats(tmp_path, arrays):
    latents, factors = arrays
    np.savez(tmp_path / "z.npz", mean=latents)
    np.savetxt(tmp_path / "s.csv", factors, delimiter=",", fmt="%d", header="a,b", comments="")
    lat, fac = load_pair(tmp_path / "z.npz", tmp_path / "s.csv")
    np.testing.assert_array_equal(lat, latents)
    np.testing.assert_array_equal(fac, factors)


def test_pair_one_dimensional_arrays_become_columns(tmp_path, arrays):
    latents, factors = arrays
    np.save(tmp_path / "z.npy", latents[:, 0])
    np.save(tmp_path / "s.npy", factors[:, 0])
    lat, fac = load_pair(tmp_path / "z.npy", tmp_path / "s.npy")
    assert lat.shape == (20, 1) and fac.shape == (20, 1)


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npy"
    with pytest.raises(InputFileNotFoundError, match=r"nope\.npy") as info:
        load_array(path)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)


def test_directory(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(InputError, match="directory"):
        load_array(tmp_path / "d.npy")


def test_unknown_extension_lists_supported(tmp_path):
    (tmp_path / "z.h5").write_bytes(b"x")
    with pytest.raises(InputError, match=r"z\.h5.*\.npy.*\.npz.*\.safetensors.*\.csv"):
        load_array(tmp_path / "z.h5")


def test_pickle_extension_explains(tmp_path):
    (tmp_path / "z.pt").write_bytes(b"x")
    with pytest.raises(InputError, match="never unpickles"):
        load_array(tmp_path / "z.pt")


def test_object_npy_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    arr = np.empty(2, dtype=object)
    arr[:] = [_Trap(str(marker)), 1]
    np.save(tmp_path / "obj.npy", arr, allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy.*object array.*never unpickles"):
        load_array(tmp_path / "obj.npy")
    assert not marker.exists()


def test_object_array_in_npz_refused_without_unpickling(tmp_path, arrays):
    marker = tmp_path / "unpickled"
    arr = np.empty(1, dtype=object)
    arr[0] = _Trap(str(marker))
    np.savez(tmp_path / "run.npz", latents=arr, factors=arrays[1])
    with pytest.raises(InputError, match=r"'latents'.*object array"):
        load_pair(tmp_path / "run.npz")
    assert not marker.exists()


def test_plain_pickle_named_npy_refused(tmp_path):
    marker = tmp_path / "unpickled"
    (tmp_path / "z.npy").write_bytes(pickle.dumps(_Trap(str(marker))))
    with pytest.raises(InputError, match="is a pickle"):
        load_array(tmp_path / "z.npy")
    assert not marker.exists()


@pytest.mark.parametrize(
    "name, payload, message",
    [
        ("z.npy", b"definitely not numpy", "not a valid .npy"),
        ("z.npz", b"definitely not a zip", "not a valid .npz"),
        ("z.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}", "safetensors"),
        ("z.csv", b"\xff\xfe\x00\x01garbage", "not a text file"),
    ],
)
def test_corrupt_files(tmp_path, name, payload, message):
    (tmp_path / name).write_bytes(payload)
    with pytest.raises(InputError, match=message) as info:
        load_array(tmp_path / name)
    assert name in str(info.value)


def test_truncated_npy(tmp_path, arrays):
    np.save(tmp_path / "z.npy", arrays[0])
    data = (tmp_path / "z.npy").read_bytes()
    (tmp_path / "z.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"z\.npy.*corrupt or truncated"):
        load_array(tmp_path / "z.npy")


def test_truncated_npz(tmp_path, arrays):
    np.savez(tmp_path / "z.npz", z=arrays[0])
    data = (tmp_path / "z.npz").read_bytes()
    (tmp_path / "z.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"z\.npz"):
        load_array(tmp_path / "z.npz")


def test_npy_named_npz(tmp_path, arrays):
    np.save(tmp_path / "z.npy", arrays[0])
    os.replace(tmp_path / "z.npy", tmp_path / "z.npz")
    with pytest.raises(InputError, match=r"rename it to \.npy"):
        load_array(tmp_path / "z.npz")


def test_absent_key_lists_present_keys(tmp_path, arrays):
    np.savez(tmp_path / "run.npz", mu=arrays[0], s=arrays[1])
    with pytest.raises(InputError, match=r"no array 'z'.*\['mu', 's'\]"):
        load_array(tmp_path / "run.npz", key="z")
    with pytest.raises(InputError, match=r"no array 'labels'.*\['mu', 's'\]"):
        load_pair(tmp_path / "run.npz", factors_key="labels")


def test_ambiguous_single_array_read(tmp_path, arrays):
    np.savez(tmp_path / "run.npz", mu=arrays[0], s=arrays[1])
    with pytest.raises(InputError, match=r"several arrays \['mu', 's'\].*key="):
        load_array(tmp_path / "run.npz")


def test_ambiguous_conventional_names(tmp_path, arrays):
    np.savez(tmp_path / "run.npz", z=arrays[0], latents=arrays[0], factors=arrays[1])
    with pytest.raises(InputError, match=r"\['z', 'latents'\].*--latents-key"):
        load_pair(tmp_path / "run.npz")
    lat, _ = load_pair(tmp_path / "run.npz", latents_key="z")
    np.testing.assert_array_equal(lat, arrays[0])


def test_uninferable_pair_names_flags(tmp_path, arrays):
    np.savez(tmp_path / "run.npz", a=arrays[0], b=arrays[1])
    with pytest.raises(InputError, match=r"latents.*\['a', 'b'\].*--latents-key"):
        load_pair(tmp_path / "run.npz")
    np.savez(tmp_path / "three.npz", z=arrays[0], b=arrays[1], c=arrays[1])
    with pytest.raises(InputError, match=r"factors.*--factors-key"):
        load_pair(tmp_path / "three.npz")


def test_uninferable_array_in_separate_file(tmp_path, arrays):
    np.savez(tmp_path / "z.npz", mu=arrays[0], logvar=arrays[0])
    np.save(tmp_path / "s.npy", arrays[1])
    with pytest.raises(InputError, match=r"z\.npz.*\['mu', 'logvar'\].*--latents-key"):
        load_pair(tmp_path / "z.npz", tmp_path / "s.npy")


def test_factors_required_for_single_array_files(tmp_path, arrays):
    np.save(tmp_path / "z.npy", arrays[0])
    with pytest.raises(InputError, match="second file"):
        load_pair(tmp_path / "z.npy")
    np.savez(tmp_path / "one.npz", latents=arrays[0])
    with pytest.raises(InputError, match="give the factors file"):
        load_pair(tmp_path / "one.npz")


def test_key_for_single_array_format(tmp_path, arrays):
    np.save(tmp_path / "z.npy", arrays[0])
    with pytest.raises(InputError, match="does not apply"):
        load_array(tmp_path / "z.npy", key="z")


def test_mismatched_rows_name_both_files(tmp_path, arrays):
    np.save(tmp_path / "z.npy", arrays[0])
    np.save(tmp_path / "s.npy", arrays[1][:7])
    with pytest.raises(InputError, match=r"\(20, 3\).*z\.npy.*\(7, 2\).*s\.npy"):
        load_pair(tmp_path / "z.npy", tmp_path / "s.npy")


def test_non_numeric_arrays(tmp_path):
    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(InputError, match="non-numeric"):
        load_array(tmp_path / "s.npy")
    np.save(tmp_path / "r.npy", np.zeros(3, dtype=[("x", "f8"), ("y", "i4")]))
    with pytest.raises(InputError, match="structured"):
        load_array(tmp_path / "r.npy")


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,b\n1,2\n3,x\n", "could not read a numeric table"),
        ("a,b\n1,2\n3\n", "could not read a numeric table"),
        ("", "empty file"),
        ("# only a comment\n", "empty file"),
        ("a,b\n", "no data rows"),
    ],
)
def test_bad_csv(tmp_path, text, message):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(InputError, match=message) as info:
        load_array(tmp_path / "t.csv")
    assert "t.csv" in str(info.value)
