"""Vector quantization (VQ-VAE): nearest entry of a learned codebook, with an optional EMA
codebook update and dead-code restarts.

van den Oord, Vinyals, Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS 2017;
reference code ``google-deepmind/sonnet`` ``sonnet/src/nets/vqvae.py`` (``VectorQuantizer``,
``VectorQuantizerEMA``); dead-code restarts from Dhariwal et al., "Jukebox", 2020,
``openai/jukebox`` ``jukebox/vqvae/bottleneck.py``; QLAE's VQ-VAE baseline
``kylehkhsu/latent_quantization`` ``latents/vector_quantized.py`` (METHODS.md §1, §7).

Each ``dim``-vector ``z`` is replaced by its nearest codebook entry ``e_k`` (squared Euclidean
distance; ties to the lower index), passed straight through: ``z + sg(e_k − z)``.

Losses (unweighted means over every element; the model applies the weights, VQ-VAE uses 1
and β = 0.25):

- ``codebook = mean ‖sg(z) − e‖²`` (moves the entries; absent with ``ema=True``),
- ``commitment = mean ‖z − sg(e)‖²``.

EMA variant (``ema=True``, Sonnet ``VectorQuantizerEMA``): the codebook is a buffer, updated
after each training batch from the counts ``n_k`` and sums ``Σ_{i→k} z_i`` of the vectors
assigned to entry ``k``:

- ``N_k ← γ N_k + (1 − γ) n_k`` and ``m_k ← γ m_k + (1 − γ) Σ z``;
- Laplace smoothing ``Ñ_k = (N_k + ε) / (Σ_j N_j + K ε) · Σ_j N_j``;
- ``e_k = m_k / Ñ_k``.

Dead-code restart (``restart_threshold``, Jukebox): an EMA of each entry's count (the same
``N_k``, also kept without ``ema``) below the threshold marks the entry dead; it is reset to
a random vector of the current batch (the batch tiled with Gaussian noise of std
``0.01/√dim`` when it has fewer vectors than the codebook), with ``N_k = max(1, threshold)``
and ``m_k = e_k``.

Statistics in ``aux`` (detached): ``usage`` (fraction of entries used in the batch),
``perplexity`` (``exp`` of the entropy of the batch's code histogram) and ``restarted`` (entries
reset by this call).

Choices:

- EMA state starts at ``N_k = 1`` and ``m_k = e_k`` (each entry counted once at its initial
  value), as Jukebox does; Sonnet starts from zeros with TensorFlow's zero-debiasing. Either
  way ``e_k = m_k / N_k`` holds from the first step and an unused entry keeps its value.
- ``init="uniform"``: ``U(±√(3/dim))`` (Sonnet's and LQ's variance-scaling initialiser);
  ``init="data"``: random encoder outputs of the first training batch (Jukebox).
- Under ``torch.distributed`` the counts and sums are summed over processes and restart
  vectors come from rank 0, so every process keeps the same codebook.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from disentkit.quantizers._base import (
    Quantizer,
    QuantizerOutput,
    check_float,
    check_int,
    register_quantizer,
    straight_through,
    usage_stats,
)

#: codebook initialisations
INITS = ("uniform", "data")


@register_quantizer("vq")
class VectorQuantizer(Quantizer):
    """Nearest-neighbour vector quantization of ``z`` ``(..., dim)``.

    ``codes`` ``(..., dim)``; ``indices`` ``(...)`` in ``[0, n_codes)``.

    Args:
        dim: code dimension (size of ``z``'s last axis).
        n_codes: codebook entries ``K``.
        ema: update the codebook by exponential moving averages instead of the codebook loss.
        decay: EMA decay ``γ`` (Sonnet 0.99; also the decay of the usage counts used for
            restarts).
        eps: Laplace smoothing ``ε`` (Sonnet 1e-5).
        restart_threshold: reset entries whose EMA count falls below this (Jukebox 1.0);
            ``None`` (default, as Sonnet and the LQ baseline) never resets.
        init: ``"uniform"`` (Sonnet, LQ) or ``"data"`` (Jukebox).

    Example:
        >>> q = VectorQuantizer(2, n_codes=3)
        >>> with torch.no_grad():
        ...     _ = q.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]))
        >>> codes, indices, aux = q(torch.tensor([[0.9, 0.8], [-0.7, 0.1]]))
        >>> codes.tolist(), indices.tolist(), q.loss_names
        ([[1.0, 1.0], [-1.0, 0.0]], [1, 2], ('codebook', 'commitment'))
    """

    codebook: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    initialized: torch.Tensor

    def __init__(
        self,
        dim: int,
        *,
        n_codes: int = 512,
        ema: bool = False,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_threshold: float | None = None,
        init: str = "uniform",
    ) -> None:
        super().__init__(dim)
        check_int("n_codes", n_codes, minimum=1)
        check_float("decay", decay, low=0.0, high=1.0)
        check_float("eps", eps, low=0.0)
        if restart_threshold is not None:
            check_float("restart_threshold", restart_threshold, low=0.0)
        if init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}; received {init!r}")
        self.n_codes = n_codes
        self.ema = bool(ema)
        self.decay = float(decay)
        self.eps = float(eps)
        self.restart_threshold = None if restart_threshold is None else float(restart_threshold)
        self.init = init
        self.loss_names = ("commitment",) if self.ema else ("codebook", "commitment")

        limit = math.sqrt(3.0 / dim)
        codebook = torch.empty(n_codes, dim).uniform_(-limit, limit)  # (K, d)
        if self.ema:
            self.register_buffer("codebook", codebook)
            self.register_buffer("embed_sum", codebook.clone())  # (K, d) m_k
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("cluster_size", torch.ones(n_codes))  # (K,) N_k
        self.register_buffer("initialized", torch.tensor(init != "data"))

    # -- forward -------------------------------------------------------------------------
    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        batch_shape = z.shape[:-1]
        flat = z.reshape(-1, self.dim)  # (N, d)
        if self.init == "data" and self.training and not bool(self.initialized):
            self._init_from_data(flat.detach())
        codebook = self.codebook.float()  # (K, d)
        with torch.no_grad():
            indices = self._nearest(flat, codebook)  # (N,)
        e = codebook[indices]  # (N, d), carries the codebook's gradient without EMA
        aux: dict[str, torch.Tensor] = {}
        if not self.ema:
            aux["codebook"] = (flat.detach() - e).square().mean()
        aux["commitment"] = (flat - e.detach()).square().mean()
        aux.update(usage_stats(indices.unsqueeze(-1), self.n_codes))
        codes = straight_through(e, flat).reshape(*batch_shape, self.dim)
        if self.training:
            aux["restarted"] = self._update(flat.detach(), indices)
        else:
            aux["restarted"] = torch.zeros((), device=z.device)
        return QuantizerOutput(codes, indices.reshape(batch_shape), aux)

    @staticmethod
    def _nearest(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        # ‖z − e‖² = ‖z‖² − 2 z·e + ‖e‖²; ‖z‖² does not change the argmin
        distance = codebook.square().sum(-1) - 2 * flat @ codebook.T  # (N, K)
        return distance.argmin(-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Codebook entries ``(..., dim)`` float32 of ``indices`` ``(...)``."""
        return self.codebook_vectors()[indices.long()]

    def codebook_vectors(self) -> torch.Tensor:
        """The codebook ``(n_codes, dim)``, detached float32."""
        return self.codebook.detach().float()

    # -- training-time state -------------------------------------------------------------
    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """EMA statistics, EMA codebook, dead-code restarts; returns the entries restarted."""
        counts = torch.bincount(indices, minlength=self.n_codes).float()  # (K,) n_k
        self.cluster_size.mul_(self.decay).add_(all_reduce(counts), alpha=1 - self.decay)
        if self.ema:
            sums = torch.zeros_like(self.embed_sum).index_add_(0, indices, flat)  # (K, d)
            self.embed_sum.mul_(self.decay).add_(all_reduce(sums), alpha=1 - self.decay)
            total = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (total + self.n_codes * self.eps) * total
            self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(-1))
        if self.restart_threshold is None:
            return torch.zeros((), device=flat.device)
        dead = self.cluster_size < self.restart_threshold  # (K,) same on every process
        # masked writes rather than `if dead.any()`: no host-device synchronisation
        self._reset(dead, broadcast_from_rank0(random_vectors(flat, self.n_codes)))
        return dead.sum().float()

    @torch.no_grad()
    def _init_from_data(self, flat: torch.Tensor) -> None:
        everything = torch.ones(self.n_codes, dtype=torch.bool, device=flat.device)
        self._reset(everything, broadcast_from_rank0(random_vectors(flat, self.n_codes)))
        self.initialized.fill_(True)

    def _reset(self, mask: torch.Tensor, vectors: torch.Tensor) -> None:
        """Set the entries in ``mask`` ``(K,)`` to the rows of ``vectors`` ``(K, d)``."""
        keep = ~mask.unsqueeze(-1)  # (K, 1)
        vectors = vectors.to(self.codebook.dtype)
        count = max(1.0, self.restart_threshold or 1.0)
        self.codebook.data.copy_(torch.where(keep, self.codebook.data, vectors))
        self.cluster_size.masked_fill_(mask, count)
        if self.ema:
            self.embed_sum.copy_(torch.where(keep, self.embed_sum, vectors * count))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, n_codes={self.n_codes}, ema={self.ema}, decay={self.decay}, "
            f"eps={self.eps}, restart_threshold={self.restart_threshold}, init={self.init!r}"
        )


def random_vectors(flat: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` random rows of ``flat`` ``(N, d)``; tiled with small noise when ``N < n``."""
    rows, dim = flat.shape
    if rows < n:
        repeats = -(-n // rows)
        flat = flat.repeat(repeats, 1)  # (N·repeats, d)
        flat = flat + torch.randn_like(flat) * (0.01 / math.sqrt(dim))
    return flat[torch.randperm(flat.shape[0], device=flat.device)[:n]]  # (n, d)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the processes in place (as it is without torch.distributed)."""
    if _distributed():
        dist.all_reduce(tensor)
    return tensor


def broadcast_from_rank0(tensor: torch.Tensor) -> torch.Tensor:
    """Process 0's ``tensor`` on every process, in place (as it is without distributed)."""
    if _distributed():
        dist.broadcast(tensor, src=0)
    return tensor
