"""The pieces of the Ray executor that Ray pickles: the trainable and the progress callback.

They live in their own module, imported only when the Ray executor runs, so that Ray
pickles them by reference (module and name) rather than by value.
"""

from __future__ import annotations

import os
from typing import Any

from ray import tune

from disentkit.study._trial import StudyProgress, train_run

#: the live progress displays of this driver process, by key; a callback holds a key into
#: this table, not the display itself (which holds locks and cannot be pickled)
REPORTERS: dict[str, StudyProgress] = {}


def trainable(config: dict[str, Any]) -> None:
    """One study run in a Ray worker: train (or continue) and score it, then report."""
    import torch

    cpus = max(1, int(config.get("cpus", 1)))
    torch.set_num_threads(cpus)
    os.environ["LOKY_MAX_CPU_COUNT"] = str(cpus)  # joblib inside the metrics
    summary = train_run(config["study_dir"], int(config["model_num"]))
    tune.report({"model_num": summary["model_num"], **summary["scores"]})


class ProgressCallback(tune.Callback):
    """Forwards Tune's trial events to the driver's :class:`StudyProgress`."""

    def __init__(self, key: str) -> None:
        self.key = key

    def _call(self, method: str, trial: Any) -> None:
        reporter = REPORTERS.get(self.key)
        if reporter is not None:
            getattr(reporter, method)(int(trial.config["model_num"]))

    def on_trial_start(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self._call("started", trial)

    def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self._call("finished", trial)

    def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self._call("failed", trial)

    def on_trial_recover(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
        self._call("retried", trial)
