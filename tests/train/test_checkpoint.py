"""Atomic files, the resume checkpoint and safetensors weights loaded without pickle."""

from __future__ import annotations

import csv
import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from disentkit import DisentkitWarning
from disentkit._atomic import atomic_write, remove_stale_temporaries, write_json
from disentkit._lock import DirectoryInUseError
from disentkit.models import build_model
from disentkit.models.saved import load_model, read_model_info, save_model
from disentkit.train import checkpoint as ck
from disentkit.train.checkpoint import checkpoint_step, load_checkpoint, save_checkpoint
from disentkit.train.trainer import fit
from tests.train import TINY, sigkill_after_checkpoint, tiny_config

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("tiny_model")


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    save_checkpoint(path, {"step": 4, "weights": torch.arange(6.0)})
    before = path.read_bytes()

    def dying_write(tmp, data):
        tmp.write_bytes(data[: len(data) // 2])  # half of the file written, then the "crash"
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(ck, "_write_file", dying_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 8, "weights": torch.zeros(6)})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert _files(path.parent) == ["last.ckpt"]  # no temporary file left behind
    state = load_checkpoint(path)
    assert state["step"] == 4 and torch.equal(state["weights"], torch.arange(6.0))


def test_a_full_disk_leaves_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    save_checkpoint(path, {"step": 4, "weights": torch.arange(6.0)})
    save_checkpoint(path, {"step": 8, "weights": torch.arange(6.0) + 1})
    assert load_checkpoint(ck.previous_checkpoint(path))["step"] == 4

    def full_disk(tmp, data):
        tmp.write_bytes(data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "_write_file", full_disk)
    with pytest.raises(ck.CheckpointWriteError, match="no space left on device") as e:
        save_checkpoint(path, {"step": 12, "weights": torch.zeros(6)})
    assert "last.ckpt, previous.ckpt) is intact" in str(e.value)
    assert isinstance(e.value, ValueError)  # one line from the CLI, not a traceback
    monkeypatch.undo()
    assert _files(path.parent) == ["last.ckpt", "previous.ckpt"]
    assert load_checkpoint(path)["step"] == 8
    assert load_checkpoint(ck.previous_checkpoint(path))["step"] == 4


def test_a_truncated_last_checkpoint_falls_back_to_the_previous_one(tmp_path):
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"step": 4, "weights": torch.arange(6.0)})
    save_checkpoint(path, {"step": 8, "weights": torch.arange(6.0)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # an interrupted copy
    state, read, problems = ck.load_latest_checkpoint(path)
    assert (state["step"], read.name) == (4, "previous.ckpt")
    assert len(problems) == 1 and "cannot read checkpoint" in problems[0]
    ck.previous_checkpoint(path).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no readable checkpoint"):
        ck.load_latest_checkpoint(path)


def test_killed_writes_leave_only_temporaries_that_are_removed(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    stale = tmp_path / ".a.json.abc123.tmp"
    stale.write_text("{half")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert _files(tmp_path) == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}


def test_atomic_write_replaces_content(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write(target, lambda tmp: tmp.write_text("one"))
    atomic_write(target, lambda tmp: tmp.write_text("two"))
    assert target.read_text() == "two" and _files(tmp_path) == ["f.txt"]


def test_json_is_strict_and_non_finite_becomes_null(tmp_path):
    write_json(tmp_path / "m.json", {"a": float("nan"), "b": (1, 2)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": [1, 2]}


class _Payload:  # not loadable with weights_only=True
    pass


def test_checkpoint_reading_refuses_arbitrary_objects_and_garbage(tmp_path):
    evil = tmp_path / "evil.ckpt"
    torch.save({"format": ck.CHECKPOINT_FORMAT, "step": 1, "x": _Payload()}, evil)
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(evil)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(garbage)
    other = tmp_path / "other.ckpt"
    torch.save({"step": 1}, other)
    with pytest.raises(ValueError, match="is not a disentkit checkpoint"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_safetensors_round_trip_never_unpickles(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = build_model(TINY, kind="quantized", hidden=8)
    save_model(model, tmp_path, info={"data": "xyobject_tiny", "step": 5})
    assert _files(tmp_path) == ["model.json", "model.safetensors"]

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a shareable model")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)

    for path in (tmp_path, tmp_path / "model.safetensors", tmp_path / "model.json"):
        loaded = load_model(path)
        assert not loaded.training and loaded.config == model.config
        ref, got = model.state_dict(), loaded.state_dict()
        assert ref.keys() == got.keys()
        assert all(torch.equal(ref[k], got[k]) for k in ref)
    info = read_model_info(tmp_path)
    assert info["model"] == TINY and info["step"] == 5 and info["data"] == "xyobject_tiny"
    assert info["config"]["hidden"] == 8 and info["disentkit_version"]

    # A lone weights file carries the record in its header.
    (tmp_path / "model.json").unlink()
    alone = load_model(tmp_path / "model.safetensors")
    assert alone.config == model.config


def test_checkpoint_step_is_zero_until_a_checkpoint_exists(tmp_path):
    assert checkpoint_step(tmp_path) == 0
    save_checkpoint(tmp_path / "checkpoints" / "last.ckpt", {"step": 7})
    assert checkpoint_step(tmp_path) == 7


def test_a_saved_model_serves_as_a_teacher(tmp_path):
    from disentkit.models import disentkit_model_teacher

    torch.manual_seed(0)
    model = build_model(TINY, kind="ae", n_latents=3, image_shape=(1, 16, 16))
    save_model(model, tmp_path)
    teacher = disentkit_model_teacher(tmp_path)
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(teacher(x), model.eval().encode(x).mean)  # (2, 3)
    assert teacher(torch.rand(2, 3, 32, 32)).shape == (2, 3)  # resized, to one channel


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        load_model(tmp_path)
    model = build_model(TINY)
    save_model(model, tmp_path)
    record = json.loads((tmp_path / "model.json").read_text())
    record["config"]["hidden"] = 7  # shapes no longer match the weights
    (tmp_path / "model.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="does not match model"):
        load_model(tmp_path)
    record["model"] = "no_such_model"
    (tmp_path / "model.json").write_text(json.dumps(record))
    with pytest.raises(KeyError, match="unknown model 'no_such_model'"):
        load_model(tmp_path)
    record["format"] = "something-else"
    (tmp_path / "model.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="is not a disentkit model record"):
        load_model(tmp_path)


def _rows(run):
    with (run / "log" / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


def _same_weights(a: Path, b: Path) -> bool:
    ta, tb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


_KILLED_RUN = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[3])
    from tests.train import register_tiny
    register_tiny()
    from disentkit.train import fit
    fit(json.loads(sys.argv[1]), run_dir=sys.argv[2], progress=False)
    """
)


def test_sigkill_then_resume_gives_bit_identical_weights(tmp_path):
    config = tiny_config(steps=48, checkpoint_every=6, log_every=3, deterministic=True,
                         model_options={"critic": True})
    killed = tmp_path / "killed"
    env = {**os.environ, "DISENTKIT_TEST_STEP_SLEEP": "0.05", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, json.dumps(config),
                             str(killed), str(ROOT)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = killed / "checkpoints" / "last.ckpt"
    step_at_kill = sigkill_after_checkpoint(proc, ckpt, 12)
    assert 12 <= step_at_kill < 48
    assert not (killed / "model.safetensors").exists()
    logged = [int(r["step"]) for r in _rows(killed)]
    assert logged[-1] >= step_at_kill

    fit(config, run_dir=killed, resume=True, progress=False)
    straight = fit(config, run_dir=tmp_path / "straight", progress=False)
    assert _same_weights(killed, straight)
    # the log has each step once, in order, as if the run had never stopped
    assert [int(r["step"]) for r in _rows(killed)] == list(range(3, 49, 3))
    assert _rows(killed) != [] and [r["loss"] for r in _rows(killed)] == [
        r["loss"] for r in _rows(straight)]
    assert not list(killed.rglob(".*.tmp"))


def test_training_survives_a_truncated_checkpoint_and_a_full_disk(tmp_path, monkeypatch):
    config = tiny_config(steps=20, checkpoint_every=5, log_every=5)
    run = fit(config, run_dir=tmp_path / "run", progress=False)
    ckpt = run / "checkpoints" / "last.ckpt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # last.ckpt damaged after the run ended
    longer = {**config, "steps": 30}
    with pytest.warns(DisentkitWarning, match="resuming from previous.ckpt \\(step 15\\)"):
        fit(longer, run_dir=run, resume=True, progress=False)
    straight = fit(longer, run_dir=tmp_path / "straight", progress=False)
    assert _same_weights(run, straight)  # steps 15-30 retaken exactly

    writes = []

    def full_disk_at_the_second_checkpoint(tmp, data):
        writes.append(tmp)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        tmp.write_bytes(data)

    monkeypatch.setattr(ck, "_write_file", full_disk_at_the_second_checkpoint)
    with pytest.raises(ck.CheckpointWriteError, match="no space left on device"):
        fit(config, run_dir=tmp_path / "full", progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "full" / "checkpoints" / "last.ckpt")["step"] == 5
    again = fit(config, run_dir=tmp_path / "full", resume=True, progress=False)
    assert load_checkpoint(again / "checkpoints" / "last.ckpt")["step"] == 20
    assert _same_weights(again, fit(config, run_dir=tmp_path / "ref", progress=False))


def test_a_second_writer_is_refused_while_the_first_lives_and_not_after_its_sigkill(tmp_path):
    config = tiny_config(steps=300, checkpoint_every=5, log_every=5)
    run = tmp_path / "run"
    env = {**os.environ, "DISENTKIT_TEST_STEP_SLEEP": "0.3", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, json.dumps(config), str(run),
                             str(ROOT)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (run / "checkpoints" / "last.ckpt").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        with pytest.raises(DirectoryInUseError, match=f"in use by pid {proc.pid} on host"):
            fit(config, run_dir=run, resume=True, progress=False)  # e.g. a manual resume
        assert proc.poll() is None  # the first writer was not disturbed
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the kernel released the lock with the process: the run resumes and finishes
    fit(config, run_dir=run, resume=True, progress=False)
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["step"] == 300
