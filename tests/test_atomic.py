"""The one JSON-safe conversion of the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from disentkit._atomic import jsonable


def test_jsonable_replaces_non_finite():
    out = jsonable({"a": np.float32(np.nan), "b": (1, np.int64(2)), "c": np.array([np.inf, 1])})
    assert out == {"a": None, "b": [1, 2], "c": [None, 1.0]}
    json.dumps(out, allow_nan=False)


@dataclass
class _Record:
    path: Path
    values: tuple[float, ...]


def test_jsonable_converts_tensors_paths_and_dataclasses():
    out = jsonable({1: _Record(Path("a/b"), (0.5, float("-inf"))), "t": torch.tensor([1.0, 2.0])})
    assert out == {"1": {"path": "a/b", "values": [0.5, None]}, "t": [1.0, 2.0]}
    assert jsonable(torch.tensor(float("nan"))) is None
