"""Training: run configuration, the trainer, run directories and shareable weights.

- :class:`RunConfig` / :func:`build_config` / :func:`load_config`: what to train and how
  (YAML/JSON + overrides), validated once and frozen; :func:`resolve_config` writes the
  model's defaults out.
- :func:`fit`: train and write a run directory (``config.json``, ``checkpoints/last.ckpt``,
  ``log/metrics.csv``, ``model.safetensors`` + ``model.json``); exact resume.
- :func:`evaluate_run`: score a run's model, write ``metrics.json``.
- :func:`load_model` / :func:`save_model`: weights as safetensors + JSON, never pickle.

Importing this package does not import torch or Lightning; calling these functions does.
"""

from disentkit.train.checkpoint import load_model, read_model_info, save_model
from disentkit.train.config import (
    EvalConfig,
    OptimizerConfig,
    RunConfig,
    build_config,
    load_config,
    resolve_config,
)
from disentkit.train.evaluate_run import evaluate_run
from disentkit.train.trainer import fit

__all__ = [
    "EvalConfig",
    "OptimizerConfig",
    "RunConfig",
    "build_config",
    "evaluate_run",
    "fit",
    "load_config",
    "load_model",
    "read_model_info",
    "resolve_config",
    "save_model",
]
