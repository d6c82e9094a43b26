"""Training: run configuration, the trainer, run directories and shareable weights.

- :class:`RunConfig` / :func:`load_config`: what to train and how (YAML/JSON + overrides).
- :func:`fit`: train and write a run directory (``config.json``, ``checkpoints/last.ckpt``,
  ``log/metrics.csv``, ``model.safetensors`` + ``model.json``); exact resume.
- :func:`fit_vectorized`: train K runs (seeds, hyper-parameters) as one vectorised model,
  one ordinary run directory each (:mod:`disentkit.train.vectorized`).
- :func:`evaluate_run`: score a run's model, write ``metrics.json``.
- :func:`load_model` / :func:`save_model`: weights as safetensors + JSON, never pickle.

Importing this package does not import torch or Lightning; calling these functions does.
"""

from disentkit.train.checkpoint import load_model, read_model_info, save_model
from disentkit.train.config import EvalConfig, OptimizerConfig, RunConfig, load_config
from disentkit.train.evaluate_run import evaluate_run
from disentkit.train.trainer import fit, resolve_config
from disentkit.train.vectorized import fit_vectorized

__all__ = [
    "EvalConfig",
    "OptimizerConfig",
    "RunConfig",
    "evaluate_run",
    "fit",
    "fit_vectorized",
    "load_config",
    "load_model",
    "read_model_info",
    "resolve_config",
    "save_model",
]
