"""Cosine vector quantization: the L2-normalised codebook of LlamaGen and FQGAN.

Bai et al., "Factorized Visual Tokenization and Generation", arXiv 2411.16681 (FQGAN);
reference code ``showlab/FQGAN`` ``vq_model_dual.py`` L435-496 (quantizer), L635-648 (entropy
loss), L478-482 (codebook usage); the quantizer is LlamaGen's (Sun et al. 2024,
``FoundationVision/LlamaGen`` ``tokenizer/tokenizer_image/vq_model.py``). METHODS.md §5.1.

Both the input vectors and the codebook entries are L2-normalised, so the nearest entry in
Euclidean distance is the one of largest cosine similarity:
``k* = argmax_k ⟨ẑ, ê_k⟩`` with ``ẑ = z/‖z‖``, ``ê_k = e_k/‖e_k‖`` (ties to the lower index).
The codes are the normalised entries ``ê_{k*}``, passed straight through:
``sg(ê_{k*}) + (ẑ − sg(ẑ))`` (the gradient reaching ``ẑ`` then flows back through the
normalisation to ``z``).

Losses (unweighted; FQGAN weights them 1, 0.25 and 0.03):

- ``codebook = mean (ê_{k*} − sg(ẑ))²`` (the reference's "vq" loss; moves the entries),
- ``commitment = mean (sg(ê_{k*}) − ẑ)²`` (moves the encoder),
- ``entropy = E_i[H(p_i)] − H(E_i[p_i])`` with ``p_i = softmax(−d_i / temperature)``,
  ``d_ik = ‖ẑ_i − ê_k‖²`` and ``temperature = 0.01``: low per-vector entropy (confident
  assignments) and high entropy of the average assignment (every entry used). Its gradient
  reaches both ``z`` and the codebook.

Means are over every element (``N·dim``), as ``torch.mean`` in the reference.

Statistics in ``aux`` (detached): ``usage`` and ``perplexity`` of the batch (the contract's
:func:`~disentkit.quantizers._base.usage_stats`), ``restarted`` (entries reset by this call)
and ``window_usage``: the number of distinct indices among the last ``usage_window``
assigned indices (65,536 in the reference), divided by ``n_codes``. The window is a ring
buffer of indices kept in registered buffers (``window``, ``window_position``), updated only
in training mode under ``no_grad``; it is part of the state dict, so a resumed run
continues with the same window.

Choices and deviations:

- Initialisation ``init="uniform"`` (default): ``U(±1/n_codes)`` then normalised, as the
  reference; ``init="data"``: the first training batch's normalised vectors (for inputs that
  start out nearly parallel, such as one vector per image, where a uniform codebook puts a
  whole batch into one entry). The codebook is a parameter (no EMA), as the reference.
- Dead-code restarts (``restart_threshold``, off by default as in the reference): an EMA of
  each entry's count (``N_k``, decay 0.99, starting at 1) below the threshold marks the
  entry dead; before the batch is quantized, dead entries are reset to random normalised
  vectors of the batch (tiled with noise of std ``0.01/√dim`` when it is smaller than the
  codebook) and their counts to ``max(1, threshold)``, as ``VectorQuantizer`` does
  (Jukebox). Masked writes, no host synchronisation; ``aux["restarted"]`` counts them.
  Under ``torch.distributed`` the counts are summed over processes and the vectors come
  from rank 0.
- The entropy loss is computed exactly, in log space (``log_softmax`` and ``logsumexp``), so
  its gradient stays finite where a probability underflows to 0 (at temperature 0.01 most
  do). The reference writes ``log(p̄ + 1e-5)`` for the average's entropy (its other epsilon,
  ``log_softmax(x + 1e-5)``, changes nothing), which differs from the exact value by at
  most ``K·1e-5`` nats (0.003 for 256 entries).
- The reference's usage buffer starts as 65,536 zeros, so entry 0 counts as used until the
  buffer has been filled once; here empty slots hold ``−1`` and are not counted.
- Under ``torch.distributed`` each process keeps the window of its own indices.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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
from disentkit.quantizers.vq import all_reduce, broadcast_from_rank0, random_vectors

#: codebook initialisations
INITS = ("uniform", "data")


def entropy_loss(logits: torch.Tensor) -> torch.Tensor:
    """``E_i[H(p_i)] − H(E_i[p_i])`` with ``p_i = softmax(logits_i)``, in nats.

    Args:
        logits: ``(N, K)`` affinities (``−d/temperature`` for the quantizer).

    Returns:
        a float32 scalar in ``[−log K, log K]``; ``−log K`` for confident assignments spread
        evenly over the ``K`` entries.

    Example:
        >>> logits = torch.tensor([[100.0, 0.0], [0.0, 100.0]])  # confident, both used
        >>> round(float(entropy_loss(logits)), 4)
        -0.6931
    """
    logits = logits.float()
    log_probs = logits.log_softmax(-1)  # (N, K), finite even where exp() underflows to 0
    sample_entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
    # log E_i[p_i] in log space: p log p then has a finite gradient where p underflows
    log_mean = torch.logsumexp(log_probs, dim=0) - math.log(logits.shape[0])  # (K,)
    mean_entropy = -(log_mean.exp() * log_mean).sum()
    return sample_entropy - mean_entropy


@register_quantizer("cosine_vq")
class CosineQuantizer(Quantizer):
    """Vector quantization by cosine similarity against an L2-normalised codebook.

    ``codes`` ``(..., dim)`` (unit vectors); ``indices`` ``(...)`` in ``[0, n_codes)``.

    Args:
        dim: code dimension (size of ``z``'s last axis).
        n_codes: codebook entries ``K`` (FQGAN: 16384 per sub-codebook).
        temperature: temperature of the entropy loss's softmax over ``−d`` (0.01).
        usage_window: number of most recent indices ``window_usage`` counts over (65,536).
        init: ``"uniform"`` (the reference: ``U(±1/K)``, normalised) or ``"data"``: the
            normalised vectors of the first training batch (random rows, tiled with noise of
            std ``0.01/√dim`` when the batch holds fewer than ``K``), as
            :class:`~disentkit.quantizers.vq.VectorQuantizer`'s ``init="data"``.
        restart_threshold: reset entries whose usage count (an EMA with ``decay``, starting
            at 1) falls below this to random vectors of the current batch (Jukebox's dead-code
            restart, as ``VectorQuantizer``'s); ``None`` (default, the reference) never resets.
        decay: decay of the usage counts.

    Example:
        >>> q = CosineQuantizer(2, n_codes=3)
        >>> with torch.no_grad():
        ...     _ = q.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]))
        >>> codes, indices, aux = q(torch.tensor([[3.0, 0.5], [0.1, 0.4]]))
        >>> indices.tolist(), codes[1].tolist(), q.loss_names
        ([0, 1], [0.0, 1.0], ('codebook', 'commitment', 'entropy'))
    """

    window: torch.Tensor
    window_position: torch.Tensor
    initialized: torch.Tensor
    cluster_size: torch.Tensor

    def __init__(
        self,
        dim: int,
        *,
        n_codes: int = 512,
        temperature: float = 0.01,
        usage_window: int = 65_536,
        init: str = "uniform",
        restart_threshold: float | None = None,
        decay: float = 0.99,
    ) -> None:
        super().__init__(dim)
        check_int("n_codes", n_codes, minimum=1)
        check_float("temperature", temperature, low=0.0)
        check_int("usage_window", usage_window, minimum=1)
        if init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}; received {init!r}")
        self.init = init
        if restart_threshold is not None:
            check_float("restart_threshold", restart_threshold, low=0.0)
        check_float("decay", decay, low=0.0, high=1.0)
        self.restart_threshold = None if restart_threshold is None else float(restart_threshold)
        self.decay = float(decay)
        self.n_codes = n_codes
        self.temperature = float(temperature)
        self.usage_window = usage_window
        self.loss_names = ("codebook", "commitment", "entropy")
        codebook = torch.empty(n_codes, dim).uniform_(-1.0 / n_codes, 1.0 / n_codes)  # (K, d)
        self.codebook = nn.Parameter(F.normalize(codebook, dim=-1))
        self.register_buffer("window", torch.full((usage_window,), -1, dtype=torch.int64))
        self.register_buffer("window_position", torch.zeros((), dtype=torch.int64))
        self.register_buffer("initialized", torch.tensor(init != "data"))
        self.register_buffer("cluster_size", torch.ones(n_codes))  # (K,) EMA usage counts

    def normalized_codebook(self) -> torch.Tensor:
        """The unit-norm entries ``(K, dim)`` float32 (with the codebook's gradient)."""
        return F.normalize(self.codebook.float(), dim=-1)

    def quantize(self, z: torch.Tensor) -> QuantizerOutput:
        batch_shape = z.shape[:-1]
        flat = F.normalize(z.reshape(-1, self.dim), dim=-1)  # (N, d) unit vectors ẑ
        if self.init == "data" and self.training and not bool(self.initialized):
            self._init_from_data(flat.detach())
        restarted = torch.zeros((), device=z.device)
        if self.training and self.restart_threshold is not None:
            restarted = self._restart(flat.detach())
        codebook = self.normalized_codebook()  # (K, d) unit vectors ê
        # ‖ẑ − ê‖² = ‖ẑ‖² + ‖ê‖² − 2 ẑ·ê (the norms are 1 up to rounding; kept as written)
        distance = (
            flat.square().sum(-1, keepdim=True) + codebook.square().sum(-1) - 2 * flat @ codebook.T
        )  # (N, K)
        indices = distance.detach().argmin(-1)  # (N,)
        e = codebook[indices]  # (N, d), carries the codebook's gradient
        aux: dict[str, torch.Tensor] = {
            "codebook": (e - flat.detach()).square().mean(),
            "commitment": (e.detach() - flat).square().mean(),
            "entropy": entropy_loss(-distance / self.temperature),
        }
        aux.update(usage_stats(indices.unsqueeze(-1), self.n_codes))
        if self.training:
            self.record(indices)
            self._count(indices)
        aux["window_usage"] = self.window_usage()
        aux["restarted"] = restarted
        codes = straight_through(e, flat).reshape(*batch_shape, self.dim)
        return QuantizerOutput(codes, indices.reshape(batch_shape), aux)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Normalised codebook entries ``(..., dim)`` float32 of ``indices`` ``(...)``."""
        return self.codebook_vectors()[indices.long()]

    def codebook_vectors(self) -> torch.Tensor:
        """The unit-norm entries ``(n_codes, dim)``, detached float32."""
        return self.normalized_codebook().detach()

    @torch.no_grad()
    def _init_from_data(self, flat: torch.Tensor) -> None:
        """Set every entry to a random row of ``flat`` ``(N, d)`` (same on every process)."""
        if flat.shape[0] == 0:
            return
        vectors = F.normalize(broadcast_from_rank0(random_vectors(flat, self.n_codes)), dim=-1)
        self.codebook.data.copy_(vectors.to(self.codebook.dtype))
        self.initialized.fill_(True)

    @torch.no_grad()
    def _count(self, indices: torch.Tensor) -> None:
        """EMA of each entry's count: ``N_k ← decay·N_k + (1 − decay)·n_k``."""
        counts = torch.bincount(indices.reshape(-1), minlength=self.n_codes).float()  # (K,)
        self.cluster_size.mul_(self.decay).add_(all_reduce(counts), alpha=1 - self.decay)

    @torch.no_grad()
    def _restart(self, flat: torch.Tensor) -> torch.Tensor:
        """Reset entries whose count is below the threshold to random rows of ``flat``.

        Runs before the batch is quantized, so a reset entry can take a vector of this batch.
        Masked writes (no host synchronisation); returns the number of entries reset.
        """
        assert self.restart_threshold is not None
        if flat.shape[0] == 0:
            return torch.zeros((), device=flat.device)
        dead = self.cluster_size < self.restart_threshold  # (K,), the same on every process
        drawn = broadcast_from_rank0(random_vectors(flat, self.n_codes))
        vectors = F.normalize(drawn, dim=-1)  # (K, d)
        keep = ~dead.unsqueeze(-1)  # (K, 1)
        self.codebook.data.copy_(torch.where(keep, self.codebook.data, vectors))
        self.cluster_size.masked_fill_(dead, max(1.0, self.restart_threshold))
        return dead.sum().float()

    # -- the rolling usage window ----------------------------------------------------------
    @torch.no_grad()
    def record(self, indices: torch.Tensor) -> None:
        """Append ``indices`` (any shape, in order) to the ring buffer of recent indices."""
        flat = indices.reshape(-1).to(self.window.device, torch.int64)  # (N,)
        n, size = flat.shape[0], self.usage_window
        if n == 0:
            return
        skipped = max(n - size, 0)  # only the last `size` indices can stay in the window
        kept = flat[skipped:]  # (min(N, size),)
        offsets = torch.arange(kept.shape[0], device=flat.device) + skipped
        slots = (self.window_position + offsets) % size  # distinct slots
        self.window.index_copy_(0, slots, kept)
        self.window_position.copy_((self.window_position + n) % size)

    @torch.no_grad()
    def window_usage(self) -> torch.Tensor:
        """Distinct indices in the window divided by ``n_codes``, a detached float32 scalar."""
        counts = torch.bincount(self.window + 1, minlength=self.n_codes + 1)  # slot 0: empty
        return (counts[1:] > 0).float().sum() / self.n_codes

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, n_codes={self.n_codes}, temperature={self.temperature}, "
            f"usage_window={self.usage_window}, init={self.init!r}, "
            f"restart_threshold={self.restart_threshold}, decay={self.decay}"
        )
