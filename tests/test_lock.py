"""One writer per directory: refusal names the holder; a SIGKILLed holder releases it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from disentkit._lock import LOCK_NAME, DirectoryInUseError, hold_directory

HOLD = """
import sys, time
from disentkit._lock import hold_directory
with hold_directory(sys.argv[1], what="run directory"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl locks are POSIX")
def test_a_second_holder_is_refused_and_a_killed_holder_releases(tmp_path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryInUseError, match=f"in use by pid {proc.pid} on host") as e:
            with hold_directory(tmp_path, what="run directory"):
                pass
        assert e.value.holder["pid"] == proc.pid and "started" in e.value.holder
        assert isinstance(e.value, ValueError)  # reported as bad input by the CLI
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while True:  # the kernel releases the lock when the process is gone
            try:
                with hold_directory(tmp_path) as lock:
                    assert lock.name == LOCK_NAME
                    assert f'"pid": {os.getpid()}' in lock.read_text()
                break
            except DirectoryInUseError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_the_lock_is_released_when_the_block_raises(tmp_path) -> None:
    with pytest.raises(RuntimeError), hold_directory(tmp_path):
        raise RuntimeError("boom")
    with hold_directory(tmp_path):
        pass


def test_shared_holders_coexist_and_exclude_an_exclusive_one(tmp_path) -> None:
    with hold_directory(tmp_path, shared=True), hold_directory(tmp_path, shared=True):
        with pytest.raises(DirectoryInUseError):
            with hold_directory(tmp_path):
                pass
    with hold_directory(tmp_path):
        with pytest.raises(DirectoryInUseError):
            with hold_directory(tmp_path, shared=True):
                pass
