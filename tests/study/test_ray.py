"""The shipped small study on a local Ray instance with two concurrent trials: it
completes and writes the table, a trial whose process is killed mid-run is retried and
resumes from its checkpoint, and running the finished study again starts nothing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from disentkit.study import load_spec, run_study
from disentkit.study.results import read_attempts, run_dir

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "examples" / "studies" / "small.yaml"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _kill_after_first_checkpoint(run: Path, killed: list[int], stop: threading.Event) -> None:
    """Kill (SIGKILL) the process training ``run`` once its first checkpoint exists."""
    while not stop.is_set():
        attempts = read_attempts(run)
        if attempts and (run / "checkpoints" / "last.ckpt").is_file():
            pid = attempts[0]["pid"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.01)


def test_small_study_on_local_ray(local_ray, tmp_path):
    spec = load_spec(SMALL)
    assert spec.resources["max_concurrent"] == 2 and spec.resources["max_retries"] >= 1
    out = tmp_path / "small"
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_after_first_checkpoint,
                               args=(run_dir(out, 0), killed, stop), daemon=True)
    watcher.start()
    try:
        outcome = run_study(SMALL, out, progress=False)
    finally:
        stop.set()
        watcher.join(timeout=5)

    # the study completed and wrote its table
    frame = outcome.results
    assert outcome.ran == (0, 1, 2, 3)
    assert list(frame["status"]) == ["done"] * 4
    assert frame["score.dci.disentanglement"].notna().all()
    assert (out / "results.parquet").is_file() and (out / "results.csv").is_file()

    # run 0 was killed mid-run, retried, and resumed from its checkpoint
    assert killed, "the watcher never saw run 0's first checkpoint"
    attempts = read_attempts(run_dir(out, 0))
    assert len(attempts) == 2
    assert attempts[0]["pid"] == killed[0] != attempts[1]["pid"]
    steps = load_spec(SMALL).train["steps"]
    assert 0 < attempts[1]["start_step"] < steps
    assert frame.loc[0, "attempts"] == 2

    # two trials ran at the same time
    spans = []
    for n in range(4):
        start = min(a["started_at"] for a in read_attempts(run_dir(out, n)))
        end = json.loads((run_dir(out, n) / "study_run.json").read_text())["finished_at"]
        spans.append((start, end))
    overlaps = sum(1 for i in range(4) for j in range(i + 1, 4)
                   if spans[i][0] < spans[j][1] and spans[j][0] < spans[i][1])
    assert overlaps >= 1

    # running the finished study again starts nothing
    before = [len(read_attempts(run_dir(out, n))) for n in range(4)]
    again = run_study(SMALL, out, progress=False)
    assert again.ran == () and again.skipped == (0, 1, 2, 3)
    assert [len(read_attempts(run_dir(out, n))) for n in range(4)] == before


_DRIVER = """
import sys
from disentkit.study import run_study
run_study(sys.argv[1], sys.argv[2], progress=False)
"""


def test_a_killed_driver_rerun_loses_and_duplicates_nothing(tmp_path):
    """SIGKILL the study's driver while trials are in flight, run it again: every run is
    in the table once, and a run that was in flight continues from its checkpoint."""
    import subprocess
    import sys

    import pandas as pd
    import yaml

    spec = yaml.safe_load(SMALL.read_text())
    spec["train"].update(steps=120, checkpoint_every=10, log_every=10)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([sys.executable, "-c", _DRIVER, str(spec_path), str(out)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    first = run_dir(out, 0) / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and driver.poll() is None and not first.is_file():
            time.sleep(0.05)
        assert first.is_file(), "run 0 never wrote a checkpoint"
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == -signal.SIGKILL
    assert not (run_dir(out, 0) / "study_run.json").exists()  # run 0 was in flight

    rerun = subprocess.run([sys.executable, "-c", _DRIVER, str(spec_path), str(out)],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    frame = pd.read_parquet(out / "results.parquet")
    assert sorted(frame["model_num"]) == [0, 1, 2, 3]  # each run once: no loss, no duplicate
    assert list(frame["status"]) == ["done"] * 4
    resumed = [a for a in read_attempts(run_dir(out, 0)) if a["start_step"] > 0]
    assert resumed, read_attempts(run_dir(out, 0))  # continued from its checkpoint
