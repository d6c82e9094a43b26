"""Downloads against a real HTTP server on 127.0.0.1: resume with Range, retries, checksum
rejection, nothing half-written under the final name (also after SIGKILL), and the dataset
entry points (``download``, ``get_dataset(download=True)``, ``data download --all``)."""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from disentkit.cli import app
from disentkit.data import DATASETS, _base, _files, get_dataset
from disentkit.data._files import (
    HASH_CACHE,
    ResumableDownloader,
    download_file,
    partial_file,
)
from disentkit.data.official import ManualDownloadError, download, fetch_advice
from disentkit.registry import Registry
from tests.data.official_small import patched

BODY = os.urandom(48 << 10)  # 48 KiB: several reads, one request each
SHA = hashlib.sha256(BODY).hexdigest()


class _State:
    """What the test server serves and what it saw."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/f.bin": BODY}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.drop_after: list[int] = []  # per coming request: bytes sent before hanging up
        self.fail_with: list[int] = []  # per coming request: HTTP status to answer
        self.corrupt = False  # flip a byte in the middle
        self.ranges = True  # honour Range requests
        self.stall_after: int | None = None  # send this many bytes, then wait for release
        self.release = threading.Event()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_HEAD(self) -> None:
        self.send_response(200 if self.path in self.server.state.files else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        state = self.server.state
        rng = self.headers.get("Range")
        state.requests.append((self.path, rng))
        if state.fail_with:
            code = state.fail_with.pop(0)
            self.send_response(code)
            self.send_header("Retry-After", "0")  # asked for: no backoff wait
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if state.corrupt:
            mid = len(body) // 2
            body = body[:mid] + bytes([body[mid] ^ 0xFF]) + body[mid + 1 :]
        start = 0
        if rng and state.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if state.drop_after:
            payload = payload[: state.drop_after.pop(0)]  # then the connection closes
        elif state.stall_after is not None:
            self.wfile.write(payload[: state.stall_after])
            self.wfile.flush()
            state.release.wait(20)  # bounded: the test releases it or gives up
            return
        self.wfile.write(payload)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = _State()

    def url(self, path: str = "/f.bin") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.state.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- the transfer -----------------------------------------------------------------------------
def test_a_complete_download_is_verified_and_lands_under_its_name(server, tmp_path) -> None:
    calls: list[tuple] = []
    dest = tmp_path / "f.bin"
    assert download_file(server.url(), dest, known_sha256=(SHA,),
                         progress=lambda *a: calls.append(a)) == SHA
    assert dest.read_bytes() == BODY and _names(tmp_path) == sorted([HASH_CACHE, "f.bin"])
    assert server.state.requests == [("/f.bin", None)]
    assert calls[-1] == ("download", len(BODY), len(BODY))


def test_an_interrupted_transfer_resumes_with_a_range_request(server, tmp_path,
                                                              monkeypatch) -> None:
    rehashed: list[int] = []  # bytes read back from disk to hash (none within one call)
    real = _files._hash_prefix
    monkeypatch.setattr(_files, "_hash_prefix",
                        lambda path, size: rehashed.append(size) or real(path, size))
    server.state.drop_after = [10_000, 7_000]  # two dropped connections, then the rest
    dest = tmp_path / "f.bin"
    sha = download_file(server.url(), dest, known_sha256=(SHA,), backoff=0)
    assert rehashed == []
    assert sha == SHA and hashlib.sha256(dest.read_bytes()).hexdigest() == SHA
    assert [r for _, r in server.state.requests] == [None, "bytes=10000-", "bytes=17000-"]
    assert not partial_file(dest).exists()


def test_a_partial_file_from_an_earlier_run_is_resumed(server, tmp_path) -> None:
    dest = tmp_path / "f.bin"
    partial_file(dest).write_bytes(BODY[:20_000])
    downloader = ResumableDownloader(known_sha256=(SHA,), backoff=0)
    downloader(server.url(), dest)
    assert downloader.sha256 == SHA and dest.read_bytes() == BODY
    assert server.state.requests == [("/f.bin", "bytes=20000-")]


def test_a_complete_partial_file_is_verified_without_downloading_again(server,
                                                                      tmp_path) -> None:
    dest = tmp_path / "f.bin"  # a run killed between the last byte and the rename
    partial_file(dest).write_bytes(BODY)
    assert download_file(server.url(), dest, known_sha256=(SHA,)) == SHA
    assert dest.read_bytes() == BODY and not partial_file(dest).exists()
    assert server.state.requests == [("/f.bin", f"bytes={len(BODY)}-")]


def test_a_partial_file_longer_than_the_release_starts_again(server, tmp_path) -> None:
    dest = tmp_path / "f.bin"
    partial_file(dest).write_bytes(BODY + b"junk")
    assert download_file(server.url(), dest, known_sha256=(SHA,), backoff=0) == SHA
    assert [r for _, r in server.state.requests] == [f"bytes={len(BODY) + 4}-", None]


def test_a_server_ignoring_range_restarts_from_scratch(server, tmp_path) -> None:
    server.state.ranges = False
    dest = tmp_path / "f.bin"
    partial_file(dest).write_bytes(b"stale bytes of another file")
    assert download_file(server.url(), dest, known_sha256=(SHA,), backoff=0) == SHA
    assert dest.read_bytes() == BODY


def test_rate_limits_and_server_errors_are_retried(server, tmp_path) -> None:
    server.state.fail_with = [429, 503]  # Retry-After: 0, so the long backoff is not used
    t0 = time.monotonic()
    assert download_file(server.url(), tmp_path / "f.bin", backoff=30) == SHA
    assert len(server.state.requests) == 3 and time.monotonic() - t0 < 10
    server.state.fail_with = [503, 503]
    with pytest.raises(ConnectionError, match=r"after 2 attempt.*HTTP 503.*Try again later"):
        download_file(server.url(), tmp_path / "g.bin", retries=1)
    assert not (tmp_path / "g.bin").exists() and not partial_file(tmp_path / "g.bin").exists()


def test_the_downloader_answers_pooch_availability_checks(server, tmp_path) -> None:
    check = ResumableDownloader()
    assert check(server.url(), tmp_path / "f.bin", None, check_only=True) is True
    assert check(server.url("/nope.bin"), tmp_path / "f.bin", None, check_only=True) is False


def test_giving_up_keeps_the_partial_file_for_later_and_says_so(server, tmp_path) -> None:
    server.state.drop_after = [5_000, 5_000]
    dest = tmp_path / "f.bin"
    with pytest.raises(ConnectionError, match="after 2 attempt") as err:
        download_file(server.url(), dest, retries=1, backoff=0)
    part = partial_file(dest)
    assert str(part) in str(err.value) and "resumes" in str(err.value)
    assert _names(tmp_path) == [part.name] and part.read_bytes() == BODY[:10_000]
    assert download_file(server.url(), dest, known_sha256=(SHA,)) == SHA  # the next run
    assert server.state.requests[-1] == ("/f.bin", "bytes=10000-")


def test_a_corrupted_file_is_rejected_and_removed(server, tmp_path) -> None:
    server.state.corrupt = True
    dest = tmp_path / "f.bin"
    with pytest.raises(ValueError, match="checksum mismatch") as err:
        download_file(server.url(), dest, known_sha256=(SHA,), backoff=0)
    assert SHA in str(err.value) and "removed" in str(err.value)
    assert _names(tmp_path) == []  # neither the file nor its partial bytes


def test_client_errors_fail_at_once(server, tmp_path) -> None:
    with pytest.raises(ConnectionError, match="HTTP 404"):
        download_file(server.url("/nope.bin"), tmp_path / "nope.bin", backoff=5)
    assert len(server.state.requests) == 1


_KILLED_CHILD = """
import sys
from disentkit.data._files import download_file
download_file(sys.argv[1], sys.argv[2], retries=0, timeout=30)
"""


def test_a_killed_download_leaves_only_the_partial_file(server, tmp_path) -> None:
    server.state.stall_after = 30_000
    dest = tmp_path / "f.bin"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, server.url(), str(dest)],
                             env=env)
    part = partial_file(dest)
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size > 0):
            assert child.poll() is None, "the download ended before it was killed"
            assert time.monotonic() < deadline, "no bytes arrived"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    assert _names(tmp_path) == [part.name]  # nothing under the final name
    kept = part.stat().st_size
    assert 0 < kept <= 30_000 and part.read_bytes() == BODY[:kept]
    server.state.stall_after = None
    server.state.release.set()
    assert download_file(server.url(), dest, known_sha256=(SHA,)) == SHA
    assert server.state.requests[-1] == ("/f.bin", f"bytes={kept}-")
    assert dest.read_bytes() == BODY


def test_the_downloader_serves_pooch(server, tmp_path) -> None:
    pooch = pytest.importorskip("pooch")
    server.state.drop_after = [9_000]
    path = pooch.retrieve(server.url(), known_hash=f"sha256:{SHA}", fname="f.bin",
                          path=tmp_path, downloader=ResumableDownloader(backoff=0),
                          progressbar=False)
    assert Path(path).read_bytes() == BODY
    assert [r for _, r in server.state.requests] == [None, "bytes=9000-"]


# -- datasets ---------------------------------------------------------------------------------
_SIZES = (2, 1, 1, 1, 1, 2, 2)  # an 8-image MPI3D grid


@pytest.fixture
def tiny_mpi3d(server, tmp_path) -> Iterator[np.ndarray]:
    """mpi3d_toy's spec pointing at the local server, which serves an 8-image release."""
    images = np.arange(8 * 4 * 4 * 3, dtype=np.uint8).reshape(8, 4, 4, 3)
    src = tmp_path / "src.npz"
    np.savez(src, images=images)
    data = src.read_bytes()
    server.state.files = {"/mpi3d_toy.npz": data}
    with patched("mpi3d_toy", factor_sizes=_SIZES,
                 factor_values=tuple(tuple(range(s)) for s in _SIZES),
                 urls={"mpi3d_toy.npz": server.url("/mpi3d_toy.npz")},
                 sha256={"mpi3d_toy.npz": (hashlib.sha256(data).hexdigest(),)}):
        yield images


def test_get_dataset_downloads_missing_files_first(server, tiny_mpi3d, tmp_path) -> None:
    root = tmp_path / "data"
    with pytest.raises(FileNotFoundError, match="download=True"):
        get_dataset("mpi3d_toy", data_dir=root)
    server.state.drop_after = [300]
    ds = get_dataset("mpi3d_toy", data_dir=root, download=True)
    assert np.array_equal(ds.images([5, 2]), tiny_mpi3d[[5, 2]])
    assert ds.source.known_release is True
    assert [r for _, r in server.state.requests] == [None, "bytes=300-"]  # answered: 200
    get_dataset("mpi3d_toy", data_dir=root, download=True)  # present: no request
    assert len(server.state.requests) == 2
    get_dataset("shapes3d_procedural", download=True, image_size=8, cache_dir=False)


def test_manual_releases_say_the_same_everywhere(tmp_path) -> None:
    advice = fetch_advice("falcor3d", tmp_path)
    assert "cannot fetch" in advice and "drive.google.com" in advice
    with pytest.raises(FileNotFoundError) as missing:
        get_dataset("falcor3d", data_dir=tmp_path)
    with pytest.raises(ManualDownloadError) as manual:
        get_dataset("falcor3d", data_dir=tmp_path, download=True)
    for message in (str(missing.value), str(manual.value)):
        assert advice in message
    result = CliRunner().invoke(app, ["data", "info", "falcor3d", "--data-dir", str(tmp_path)])
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and " ".join(advice.split()) in text
    assert "then: disentkit data download" not in text and "Run `disentkit data download" \
        not in text
    # an automatic release points at the command that fetches it
    assert "Run `disentkit data download shapes3d`" in fetch_advice("shapes3d", tmp_path)


def test_a_manual_release_already_in_place_is_accepted(tmp_path) -> None:
    from tests.data.official_small import WRITERS, small

    folder = tmp_path / "falcor3d"
    folder.mkdir()
    WRITERS["falcor3d"](folder)
    with small("falcor3d"):
        paths = download("falcor3d", data_dir=tmp_path)
    assert {p.name for p in paths} == {"train-rec.labels", "images"}


def test_data_download_all(server, tiny_mpi3d, tmp_path, monkeypatch) -> None:
    registry: Registry = Registry("dataset")
    for name in ("shapes3d_procedural", "mpi3d_toy", "falcor3d"):
        registry.add(name, DATASETS[name])
    monkeypatch.setattr(_base, "DATASETS", registry)
    root = tmp_path / "data"
    result = CliRunner().invoke(app, ["data", "download", "--all", "--data-dir", str(root)])
    assert result.exit_code == 0, result.output
    assert str(root / "mpi3d_toy" / "mpi3d_toy.npz") in result.output
    assert "falcor3d: skipped" in " ".join(result.output.split())
    assert (root / "mpi3d_toy" / "mpi3d_toy.npz").is_file() and not (root / "falcor3d").exists()
    bad = CliRunner().invoke(app, ["data", "download", "mpi3d_toy", "--all"])
    assert bad.exit_code == 2 and "NAME or --all" in bad.output



def test_a_dropped_transfer_from_a_server_ignoring_range_starts_again(server, tmp_path) -> None:
    server.state.ranges = False
    server.state.drop_after = [300]
    dest = tmp_path / "f.bin"
    assert download_file(server.url(), dest, known_sha256=(SHA,), backoff=0) == SHA
    assert [r for _, r in server.state.requests] == [None, "bytes=300-"]  # answered: 200
