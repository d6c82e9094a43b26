"""A tiny model for the trainer's tests, registered only while a test module needs it.

``TinyAE`` follows the whole model contract at a few thousand parameters: a variational
variant (samples from torch's global RNG, so exact resume must restore RNG states), a
deterministic one and a quantized one (``quantized``/``indices`` representations), two
parameter groups (AdamW with decay and element-wise clipping on weights; Adam on biases)
and an optional critic declared as an extra optimiser step.

``DISENTKIT_TEST_STEP_SLEEP`` (seconds) slows each step down without changing any number.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from disentkit.models import MODELS, Encoding, ExtraStep, Model, ModelInfo, Output

TINY = "_test_tiny_ae"


@dataclass
class TinyConfig:
    image_shape: tuple[int, int, int] = (3, 32, 32)  # (C, H, W)
    n_latents: int = 4  # latent dimensions
    hidden: int = 32  # width of the one hidden layer
    kind: str = "vae"  # "vae" (sampled z), "ae" (deterministic) or "quantized"
    critic: bool = False  # declare an extra optimiser step (a linear critic) every 2 steps
    weight_decay: float = 0.01  # AdamW decay on the weight matrices
    clip_value: float = 1.0  # element-wise gradient clipping on the weight matrices
    lr: float = 3e-3  # learning rate of both groups

    def __post_init__(self) -> None:
        if self.kind not in ("vae", "ae", "quantized"):
            raise ValueError(f"kind must be 'vae', 'ae' or 'quantized'; received {self.kind!r}")


class TinyAE(Model):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        c, h, w = config.image_shape
        d = config.n_latents
        self.kinds = {
            "vae": ("mean", "sampled"), "ae": ("mean",), "quantized": ("quantized", "indices"),
        }[config.kind]
        self.representation_kinds = self.kinds
        out = 2 * d if config.kind == "vae" else d
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, config.hidden),
                                     nn.ReLU(), nn.Linear(config.hidden, out))
        self.decoder = nn.Sequential(nn.Linear(d, config.hidden), nn.ReLU(),
                                     nn.Linear(config.hidden, c * h * w))
        self.register_buffer("values", torch.linspace(-1.0, 1.0, 5))  # codebook (5,)
        self.critic = nn.Linear(d, 1) if config.critic else None

    def encode(self, x: torch.Tensor) -> Encoding:
        e = self.encoder(x)
        if self.config.kind == "vae":
            mean, logvar = e.chunk(2, dim=1)  # (B, D) each
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
            return Encoding(z=z, mean=mean, logvar=logvar)
        if self.config.kind == "ae":
            return Encoding(z=e, mean=e)
        idx = (e.unsqueeze(-1) - self.values).abs().argmin(-1)  # (B, D)
        q = self.values[idx]
        z = e + (q - e).detach()
        return Encoding(z=z, mean=e, quantized=q, indices=idx,
                        aux={"commit": ((e - q.detach()) ** 2).mean()})

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        c, h, w = self.config.image_shape
        return self.decoder(z).view(-1, c, h, w)  # (B, C, H, W)

    def loss(self, x: torch.Tensor, out: Output, step: int = 0) -> tuple[torch.Tensor, dict]:
        pause = float(os.environ.get("DISENTKIT_TEST_STEP_SLEEP", "0") or 0)
        if pause:  # slows a run down so a test can kill it between checkpoints
            time.sleep(pause)
        recon = F.binary_cross_entropy_with_logits(out.logits, x, reduction="none")
        recon = recon.flatten(1).sum(1).mean()
        terms = {"recon": recon}
        total = recon
        enc = out.encoding
        if enc.logvar is not None:
            kl = 0.5 * (enc.mean**2 + enc.logvar.exp() - enc.logvar - 1).sum(1).mean()
            terms["kl"] = kl
            total = total + kl
        for k, v in enc.aux.items():
            terms[k] = v
            total = total + v
        if self.critic is not None:
            total = total + 0.01 * self.critic(enc.z).mean()
        return total, terms

    def param_groups(self) -> list[dict[str, Any]]:
        own = [(n, p) for n, p in self.named_parameters() if not n.startswith("critic.")]
        return [
            {"params": [p for _, p in own if p.ndim > 1], "optimizer": "adamw",
             "weight_decay": self.config.weight_decay, "clip_value": self.config.clip_value,
             "lr": self.config.lr},
            {"params": [p for _, p in own if p.ndim <= 1], "optimizer": "adam",
             "lr": self.config.lr},
        ]

    def extra_steps(self) -> list[ExtraStep]:
        if self.critic is None:
            return []

        def critic_loss(x: torch.Tensor, step: int) -> tuple[torch.Tensor, dict]:
            with torch.no_grad():
                z = self.encode(x).z
            score = self.critic(z).squeeze(1)  # (B,)
            loss = (score - 1.0).pow(2).mean()
            return loss, {"score": score.mean()}

        return [ExtraStep(name="critic", parameters=lambda: list(self.critic.parameters()),
                          loss=critic_loss, every=2, optimizer={"lr": 1e-2, "betas": (0.5, 0.9)})]


def register_tiny() -> None:
    """Register ``TinyAE`` as ``_test_tiny_ae`` (idempotent)."""
    if TINY not in MODELS:
        TinyAE.name = TINY
        MODELS.add(TINY, ModelInfo(TINY, TinyAE, TinyConfig, "tiny model for tests"))


def unregister_tiny() -> None:
    """Remove the tiny model again, so registry-driven tests elsewhere never see it."""
    MODELS._entries.pop(TINY, None)


@contextmanager
def registered_tiny() -> Iterator[str]:
    was_registered = TINY in MODELS
    register_tiny()
    try:
        yield TINY
    finally:
        if not was_registered:
            unregister_tiny()


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """A run config dict for a few fast steps of the tiny model on ``xyobject_tiny``."""
    cfg: dict[str, Any] = {
        "model": TINY, "data": "xyobject_tiny", "steps": 12, "batch_size": 8, "seed": 3,
        "checkpoint_every": 4, "log_every": 2, "accelerator": "cpu",
        "eval": {"n_samples": 200, "mode": "fast", "metrics": ["mig", "sap"]},
    }
    cfg.update(overrides)
    return cfg


def sigkill_after_checkpoint(proc: Any, ckpt: Any, min_step: int, *, timeout: float = 120,
                             settle: float = 0.1) -> int:
    """SIGKILL the training subprocess ``proc`` once checkpoint ``ckpt`` reaches
    ``min_step`` (then ``settle`` seconds later, to land between two checkpoints); wait for
    it and return the checkpoint's step. Fails the test if the process ended otherwise."""
    import signal

    from disentkit.train.checkpoint import load_checkpoint

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt.is_file() and load_checkpoint(ckpt)["step"] >= min_step:
                time.sleep(settle)
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    return int(load_checkpoint(ckpt)["step"])
