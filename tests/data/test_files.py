"""File machinery: checksums and their cache, atomic writes, npz members, prepared-cache
validity, the NORB reader and the download back-end (urllib served from local bytes; against a
real server: test_download.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from disentkit._atomic import remove_stale_temporaries, write_json
from disentkit.data import _files
from disentkit.data._files import (
    HASH_CACHE,
    NpyWriter,
    NpzMemberStream,
    begin_prepared,
    cached_sha256,
    download_file,
    finish_prepared,
    grid_factors,
    npz_member_memmap,
    read_prepared_meta,
    read_rows,
    sha256_file,
)
from disentkit.data._norb import iter_norb_rows, read_norb, read_norb_header
from tests.data.fixtures import _norb_bytes, trap_metadata_npy


# -- checksums ----------------------------------------------------------------------------------
def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    data = os.urandom(3 << 20)
    p.write_bytes(data)
    calls = []
    assert sha256_file(p, progress=lambda *a: calls.append(a)) == hashlib.sha256(data).hexdigest()
    assert calls[-1] == ("hash", len(data), len(data))


def test_cached_sha256_hashes_once_per_size_and_mtime(tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 1000)
    count = {"n": 0}
    real = _files.sha256_file

    def counting(path, **kw):
        count["n"] += 1
        return real(path, **kw)

    monkeypatch.setattr(_files, "sha256_file", counting)
    first = cached_sha256(p)
    assert cached_sha256(p) == first and count["n"] == 1
    entry = json.loads((tmp_path / HASH_CACHE).read_text())["f.bin"]
    assert entry["sha256"] == first and entry["size"] == 1000
    # Same size, new content and mtime: hashed again.
    p.write_bytes(b"y" * 1000)
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert cached_sha256(p) != first and count["n"] == 2


def test_cached_sha256_survives_a_corrupt_cache(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    (tmp_path / HASH_CACHE).write_text("{not json")
    assert cached_sha256(p) == hashlib.sha256(b"abc").hexdigest()


# -- atomic writes ------------------------------------------------------------------------------
def test_atomic_json_leaves_no_temp_files(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", {"a": 1})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def _write_json(folder: Path, monkeypatch) -> None:
    write_json(folder / "m.json", {"a": 1})


def _write_npy(folder: Path, monkeypatch) -> None:
    with NpyWriter(folder / "a.npy", (4, 2), np.uint8) as w:
        w.commit()


# (a download killed before its rename leaves its resumable .part file instead:
# tests/data/test_download.py)
@pytest.mark.parametrize("writer", [_write_json, _write_npy])
def test_a_killed_writer_leaves_a_temporary_that_cleanup_removes(writer, tmp_path: Path,
                                                                  monkeypatch) -> None:
    # a process killed between writing and renaming: the rename fails and nothing is tidied
    def killed(*args: object) -> None:
        raise OSError("killed before the rename")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed)
        m.setattr(Path, "unlink", lambda self, missing_ok=False: None)
        with pytest.raises(OSError, match="killed"):
            writer(tmp_path, m)
    left = sorted(tmp_path.iterdir())
    assert len(left) == 1 and left[0].name.startswith(".")  # the writer's temporary
    assert remove_stale_temporaries(tmp_path) == left
    assert list(tmp_path.iterdir()) == []


def test_npy_writer_aborts_without_commit(tmp_path: Path) -> None:
    out = tmp_path / "a.npy"
    with pytest.raises(RuntimeError), NpyWriter(out, (10, 3), np.uint8) as w:
        w.array[:5] = 1
        raise RuntimeError("crash mid-write")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_npy_writer_commit_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "a.npy"
    with NpyWriter(out, (4, 2, 2, 1), np.uint8) as w:
        w.array[...] = np.arange(16, dtype=np.uint8).reshape(4, 2, 2, 1)
        w.commit()
    m = np.load(out, mmap_mode="r")
    assert isinstance(m, np.memmap) and m.shape == (4, 2, 2, 1) and int(m[3, 1, 1, 0]) == 15


def test_grid_factors_is_last_factor_fastest() -> None:
    g = grid_factors((2, 3))
    assert g.dtype == np.uint8
    assert g.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


# -- npz members --------------------------------------------------------------------------------
@pytest.mark.parametrize("compressed", [False, True])
def test_npz_stream_reads_in_chunks(tmp_path: Path, compressed: bool) -> None:
    x = np.arange(1000 * 6, dtype=np.uint16).reshape(1000, 2, 3)
    p = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(p, x=x, y=np.zeros(2))
    with NpzMemberStream(p, "x") as s:
        assert s.shape == (1000, 2, 3) and s.dtype == np.uint16
        parts = list(s.chunks(300))
    assert [len(c) for c in parts] == [300, 300, 300, 100]
    np.testing.assert_array_equal(np.concatenate(parts), x)


def test_npz_member_memmap_only_for_stored_members(tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3)
    p = tmp_path / "a.npz"
    np.savez(p, other=np.ones(5), images=x)
    m = npz_member_memmap(p, "images")
    assert isinstance(m, np.memmap)
    np.testing.assert_array_equal(np.asarray(m), x)
    assert npz_member_memmap(p, "missing") is None
    np.savez_compressed(p, images=x)
    assert npz_member_memmap(p, "images") is None


def test_npz_object_member_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    p = tmp_path / "a.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("metadata.npy", trap_metadata_npy(marker))
    with pytest.raises(ValueError, match="never unpickles"):
        NpzMemberStream(p, "metadata")
    assert npz_member_memmap(p, "metadata") is None
    assert not marker.exists()


def test_npz_errors_name_what_was_expected(tmp_path: Path) -> None:
    p = tmp_path / "a.npz"
    np.savez(p, a=np.zeros(2))
    with pytest.raises(ValueError, match=r"no array named 'imgs'; the file holds: a"):
        NpzMemberStream(p, "imgs")
    bad = tmp_path / "b.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not an \.npz"):
        NpzMemberStream(bad, "imgs")


def test_npz_truncated_member_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "a.npz"
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros((10, 4), np.uint8))
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("x.npy", buf.getvalue()[:-8])
    with NpzMemberStream(p, "x") as s, pytest.raises(ValueError, match="ends early"):
        list(s.chunks(4))


# -- prepared caches ----------------------------------------------------------------------------
def _fake_cache(d: Path, n: int = 6) -> None:
    begin_prepared(d)
    np.save(d / "images.npy", np.zeros((n, 2, 2, 1), np.uint8))
    np.save(d / "factors.npy", grid_factors((2, 3)))
    finish_prepared(d, {"dataset": "toy", "n_images": n, "image_shape": [2, 2, 1],
                        "factor_sizes": [2, 3]})


def test_prepared_cache_is_valid_only_with_consistent_meta(tmp_path: Path) -> None:
    d = tmp_path / "prepared"
    _fake_cache(d)
    assert read_prepared_meta(d, "toy") is not None
    assert read_prepared_meta(d, "other") is None  # another dataset's cache
    (d / ".images.npy.tmp-1-abcd").write_bytes(b"leftover from a crash")
    assert read_prepared_meta(d, "toy") is not None  # stray temp files are ignored
    np.save(d / "images.npy", np.zeros((5, 2, 2, 1), np.uint8))
    assert read_prepared_meta(d, "toy") is None  # shape disagrees with meta
    _fake_cache(d)
    (d / "meta.json").unlink()
    assert read_prepared_meta(d, "toy") is None  # interrupted: no meta, no cache


def test_begin_prepared_invalidates_first(tmp_path: Path) -> None:
    d = tmp_path / "prepared"
    _fake_cache(d)
    begin_prepared(d)
    assert read_prepared_meta(d, "toy") is None


# -- NORB reader --------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [False, True])
def test_norb_round_trip(tmp_path: Path, compress: bool) -> None:
    dat = np.random.default_rng(0).integers(0, 256, (7, 2, 3, 3), dtype=np.uint8)
    info = np.arange(28, dtype=np.int32).reshape(7, 4)
    cat = np.arange(7, dtype=np.int32)
    for name, arr in {"dat": dat, "info": info, "cat": cat}.items():
        raw = _norb_bytes(arr)
        (tmp_path / name).write_bytes(gzip.compress(raw) if compress else raw)
    np.testing.assert_array_equal(read_norb(tmp_path / "info"), info)
    np.testing.assert_array_equal(read_norb(tmp_path / "cat"), cat)
    chunks = list(iter_norb_rows(tmp_path / "dat", rows_per_chunk=3))
    assert [start for _, start, _ in chunks] == [0, 3, 6]
    np.testing.assert_array_equal(np.concatenate([c for *_, c in chunks]), dat)


def test_norb_bad_magic_and_truncation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a NORB binary matrix"):
        read_norb_header(io.BytesIO(struct.pack("<5i", 12345, 1, 3, 1, 1)))
    raw = _norb_bytes(np.zeros((4, 4), np.int32))
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match="ends early"):
        read_norb(tmp_path / "short")


# -- downloads ----------------------------------------------------------------------------------
class _Response(io.BytesIO):
    def __init__(self, data: bytes, ctype: str = "application/octet-stream",
                 length: int | None = None) -> None:
        super().__init__(data)
        self.headers = {"Content-Type": ctype,
                        "Content-Length": str(len(data) if length is None else length)}


def _serve(monkeypatch, data: bytes, **kw) -> list[str]:
    seen: list[str] = []

    def fake_urlopen(request, timeout=None):
        seen.append(request.full_url)
        return _Response(data, **kw)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return seen


def test_download_verifies_and_remembers_the_checksum(tmp_path: Path, monkeypatch) -> None:
    data = os.urandom(3 << 20)
    sha = hashlib.sha256(data).hexdigest()
    seen = _serve(monkeypatch, data)
    calls = []
    dest = tmp_path / "sub" / "f.bin"
    got = download_file("https://example.org/f.bin", dest, known_sha256=(sha,),
                        progress=lambda *a: calls.append(a))
    assert got == sha and dest.read_bytes() == data and seen == ["https://example.org/f.bin"]
    assert calls[-1] == ("download", len(data), len(data))
    assert json.loads((dest.parent / HASH_CACHE).read_text())["f.bin"]["sha256"] == sha
    assert sorted(p.name for p in dest.parent.iterdir()) == sorted([HASH_CACHE, "f.bin"])


def test_download_rejects_a_wrong_checksum(tmp_path: Path, monkeypatch) -> None:
    _serve(monkeypatch, b"tampered bytes")
    dest = tmp_path / "f.bin"
    with pytest.raises(ValueError, match="checksum mismatch") as err:
        download_file("https://example.org/f.bin", dest, known_sha256=("0" * 64,))
    assert "0" * 64 in str(err.value) and hashlib.sha256(b"tampered bytes").hexdigest() in str(
        err.value
    )
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary copy


def test_download_refuses_a_web_page_and_a_short_transfer(tmp_path: Path, monkeypatch) -> None:
    _serve(monkeypatch, b"<html>confirm</html>", ctype="text/html; charset=utf-8")
    with pytest.raises(ValueError, match="web page"):
        download_file("https://example.org/f.bin", tmp_path / "f.bin")
    assert list(tmp_path.iterdir()) == []
    _serve(monkeypatch, b"12345", length=10)
    with pytest.raises(ConnectionError, match="5 of 10 bytes"):
        download_file("https://example.org/f.bin", tmp_path / "f.bin", retries=1, backoff=0)
    # nothing under the final name; the bytes received wait in the .part file to resume
    assert [p.name for p in tmp_path.iterdir()] == [".f.bin.part"]


def test_download_offline_fails_fast_naming_url_and_destination(tmp_path: Path,
                                                                monkeypatch) -> None:
    def offline(request, timeout=None):
        assert timeout is not None and timeout <= 60  # never waits forever
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dest = tmp_path / "f.bin"
    with pytest.raises(ConnectionError) as err:
        download_file("https://example.org/f.bin", dest)
    assert "https://example.org/f.bin" in str(err.value) and str(dest) in str(err.value)
    assert not tmp_path.joinpath("f.bin").exists()


def test_read_rows_reads_runs_and_reports_truncation(tmp_path: Path) -> None:
    data = np.arange(10 * 6, dtype=np.uint8).reshape(10, 2, 3)
    path = tmp_path / "rows.bin"
    path.write_bytes(b"xyz" + data.tobytes())
    fd = os.open(path, os.O_RDONLY)
    try:
        for rows in ([0, 1, 2, 7, 8], [9, 0, 4], [3]):
            out = read_rows(fd, 3, np.array(rows), np.empty((len(rows), 2, 3), np.uint8))
            np.testing.assert_array_equal(out, data[rows])
        with pytest.raises(ValueError, match="truncated"):
            read_rows(fd, 3, np.array([10]), np.empty((1, 2, 3), np.uint8))
    finally:
        os.close(fd)
