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
