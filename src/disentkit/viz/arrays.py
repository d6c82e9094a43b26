"""Pictures of what a model does, as uint8 arrays: traversals, reconstructions, samples.

Every function here takes a :class:`~disentkit.models.Model` and uint8 images
``(N, H, W, C)`` (as a dataset returns them) and returns uint8 RGB pictures; nothing here
imports matplotlib. Torch is imported when a function is called, not when the module is.

- :func:`traversal_plan`: which values each latent is swept over, and how active it is.
- :func:`traversal_grid`: one row per latent (most active first; passive latents framed in
  red), one column per swept value, one panel per seed image.
- :func:`traversal_frames`: the same decodes as animation frames (one per swept value), for
  :func:`save_gif`.
- :func:`reconstruction_grid`: inputs (top row) above their reconstructions, each row
  labelled ("input", "reconstruction") in the picture.
- :func:`prior_samples`: decodes of random draws from the model's prior, or ``None``.

The swept values (:func:`traversal_plan`):

- quantized latents (``kind="codebook"``, the default for quantized models) visit their
  codebook values, read from the model's quantizer: QLAE's per-latent learned values, the
  FSQ grid of each dimension, FactorQVAE's global codebook (sorted ascending), or, for
  VQ-VAE, whose latents are code vectors, the codebook entries the given images use most
  (the plan then holds entry indices); with factorized quantization each latent sweeps
  the entries of its own sub-codebook that the given images use most. A codebook with
  more than ``n_steps`` values is thinned to ``n_steps`` evenly spaced sorted values (both
  ends kept).
- continuous latents (``kind="quantiles"``) visit the quantiles
  ``linspace(0.05, 0.95, n_steps)`` of their marginal over the given images (the posterior
  means for a VAE, the pre-quantization encoder output for a quantized model).

Every other latent keeps the seed image's own code (the posterior mean for a VAE, the
quantized code for a quantized model), so the pictures need no randomness: the same model
and images give the same arrays. Encoders that draw samples (VAEs) run inside
:func:`torch.random.fork_rng`, so the caller's random state is left as it was.

Activity (the row order): mean KL to the prior in nats for a VAE (passive below 0.01, as
:func:`disentkit.metrics.active_latents`), entropy in nats of the latent's code histogram
for a quantized model (passive when the images use one code only), variance relative to
the largest for a deterministic continuous code (passive below 0.01 of the largest).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from disentkit._validation import check_positive_int

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "LABEL_COLOUR",
    "PASSIVE_COLOUR",
    "RECONSTRUCTION_LABELS",
    "TraversalPlan",
    "label_rows",
    "prior_samples",
    "reconstruction_grid",
    "save_gif",
    "tile",
    "traversal_frames",
    "traversal_grid",
    "traversal_plan",
]

BACKGROUND = 255
"""Grey level of gaps and padding (white)."""
PASSIVE_COLOUR = (214, 39, 40)
"""RGB of the frame drawn around the cells of passive latents."""
LABEL_COLOUR = (29, 29, 31)
"""RGB of the row labels drawn into a picture (:func:`label_rows`)."""
RECONSTRUCTION_LABELS = ("input", "reconstruction")
"""Row labels of :func:`reconstruction_grid`, top to bottom."""
QUANTILES = (0.05, 0.95)
"""Lowest and highest quantile a continuous latent is swept to."""
_BATCH = 256
"""Images per decoder call."""
KINDS = ("codebook", "quantiles")


# --------------------------------------------------------------------------- helpers


def _check_images(images: Any) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 4 or x.dtype != np.uint8 or x.shape[0] < 1:
        raise ValueError(
            f"images must be uint8 (N, H, W, C) with N ≥ 1; received {x.dtype} {x.shape}"
        )
    return x


def _to_float(images: np.ndarray, model: Any, max_value: int) -> torch.Tensor:
    from disentkit.data.torch import to_float

    return to_float(images, _device(model), max_value=max_value)


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _fork(model: Any) -> Any:
    import torch

    dev = _device(model)
    return torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else [])


def _encode(model: Any, images: np.ndarray, max_value: int) -> Any:
    """``model.encode`` of uint8 images in batches, eval mode, caller's RNG untouched.

    Returns the concatenated :class:`~disentkit.models.Encoding` fields as CPU tensors
    (``z``, ``mean``, ``logvar``, ``quantized``, ``indices``; absent fields ``None``).
    """
    import torch

    fields = ("z", "mean", "logvar", "quantized", "indices")
    parts: dict[str, list[torch.Tensor]] = {f: [] for f in fields}
    was_training = model.training
    model.eval()
    try:
        with _fork(model), torch.inference_mode():
            torch.manual_seed(0)
            for lo in range(0, len(images), _BATCH):
                enc = model.encode(_to_float(images[lo:lo + _BATCH], model, max_value))
                for f in fields:
                    value = getattr(enc, f, None)
                    if value is not None:
                        parts[f].append(value.detach().cpu())
    finally:
        model.train(was_training)
    return {f: torch.cat(v) if v else None for f, v in parts.items()}


def _decode(model: Any, z: torch.Tensor) -> np.ndarray:
    """``sigmoid(model.decode(z))`` in batches → uint8 RGB ``(B, H, W, 3)``."""
    import torch

    out = []
    was_training = model.training
    model.eval()
    try:
        with _fork(model), torch.inference_mode():
            torch.manual_seed(0)
            for lo in range(0, z.shape[0], _BATCH):
                logits = model.decode(z[lo:lo + _BATCH].to(_device(model)))
                out.append(_to_uint8(torch.sigmoid(logits.float()).cpu().numpy()))
    finally:
        model.train(was_training)
    return np.concatenate(out)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Float ``(B, C, H, W)`` in [0, 1] → uint8 ``(B, H, W, 3)`` (1 channel repeated)."""
    if not np.isfinite(x).all():
        raise ValueError("the decoder produced NaN or infinite values")
    x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return np.ascontiguousarray(x[..., :3])


def _rgb(images: np.ndarray, max_value: int) -> np.ndarray:
    from disentkit.data.show import to_rgb

    return to_rgb(images, max_value)


def tile(
    cells: np.ndarray,
    *,
    gap: int = 2,
    border: int = 0,
    border_colours: Sequence[Sequence[int] | None] | None = None,
    filled: np.ndarray | None = None,
) -> np.ndarray:
    """Lay out uint8 images ``(R, C, h, w, 3)`` as one grid on a white background.

    Args:
        cells: the images, row by row.
        gap: background pixels between cells and around the grid.
        border: width of a frame drawn around each cell (inside the gap budget: cells
            are ``h + 2·border`` tall).
        border_colours: per row, an RGB frame colour or ``None`` (no frame).
        filled: ``(R, C)`` bool, ``False`` leaves that cell empty (background).

    Returns:
        uint8 ``(R·(h + 2b + gap) + gap, C·(w + 2b + gap) + gap, 3)``.

    Example:
        >>> tile(np.zeros((2, 3, 4, 4, 3), np.uint8), gap=1).shape
        (11, 16, 3)
    """
    cells = np.asarray(cells)
    r, c, h, w, _ = cells.shape
    gap = check_positive_int(gap, "gap", minimum=0)
    border = check_positive_int(border, "border", minimum=0)
    ch, cw = h + 2 * border, w + 2 * border
    grid = np.full((r * (ch + gap) + gap, c * (cw + gap) + gap, 3), BACKGROUND, np.uint8)
    for i in range(r):
        colour = border_colours[i] if border_colours is not None else None
        top = gap + i * (ch + gap)
        for j in range(c):
            if filled is not None and not filled[i, j]:
                continue
            left = gap + j * (cw + gap)
            if border and colour is not None:
                grid[top:top + ch, left:left + cw] = colour
            grid[top + border:top + border + h, left + border:left + border + w] = cells[i, j]
    return grid


def _hconcat(panels: Sequence[np.ndarray], gap: int) -> np.ndarray:
    height = max(p.shape[0] for p in panels)
    sep = np.full((height, gap, 3), BACKGROUND, np.uint8)
    parts: list[np.ndarray] = []
    for i, p in enumerate(panels):
        if p.shape[0] < height:
            pad = np.full((height - p.shape[0], p.shape[1], 3), BACKGROUND, np.uint8)
            p = np.concatenate([p, pad])
        if i:
            parts.append(sep)
        parts.append(p)
    return np.concatenate(parts, axis=1)


# --------------------------------------------------------------------------- bottlenecks


@dataclass(frozen=True)
class _Bottleneck:
    """How a model's decoder input is split into latents and what each latent can take.

    ``kind``: ``"continuous"``, ``"scalar"`` (one codebook of scalars per latent) or
    ``"vector"`` (VQ: each latent a ``width``-vector from one shared codebook).
    """

    kind: str
    width: int = 1
    codebooks: tuple[np.ndarray, ...] = ()  # scalar: per latent, sorted float32 values
    vectors: np.ndarray | None = None  # vector: (K, width) codebook entries
    books: tuple[np.ndarray, ...] = ()  # vector, one codebook per latent: (K_j, width) each

    def vector_book(self, j: int) -> np.ndarray:
        """The codebook latent ``j`` draws its vectors from (vector bottlenecks)."""
        if self.books:
            return self.books[j]
        assert self.vectors is not None
        return self.vectors


def _bottleneck(model: Any, n_latents: int) -> _Bottleneck:
    """Read the bottleneck from the quantizer contract (``codebook_values`` /
    ``codebook_vectors``) of ``model.quantizer``, or of ``model.quantizers`` (factorized
    quantization: one vector codebook per group of latents)."""
    q = getattr(model, "quantizer", None)
    subs = getattr(model, "quantizers", None)
    if q is None and subs is not None and len(subs):
        vectors = [s.codebook_vectors() for s in subs]
        if any(v is None for v in vectors):
            return _Bottleneck("continuous")
        # factorized quantization: each sub-codebook quantizes n_tokens latents
        # (sub-codebook-major), each latent one vector of its sub-codebook
        per = int(getattr(model.config, "n_tokens", 1))
        books = tuple(v.float().cpu().numpy() for v in vectors for _ in range(per))
        width = int(books[0].shape[1])
        if len(books) * width != n_latents:
            raise ValueError(f"{type(model).__name__}: {len(books)} sub-codebook latents of "
                             f"width {width} do not make the {n_latents} quantized values")
        return _Bottleneck("vector", width=width, books=books)
    if q is None:
        return _Bottleneck("continuous")
    values = q.codebook_values()
    if values is None:
        entries = q.codebook_vectors()
        if entries is None:
            return _Bottleneck("continuous")
        vectors = entries.float().cpu().numpy()  # (K, d)
        return _Bottleneck("vector", width=int(vectors.shape[1]), vectors=vectors)
    books = tuple(v.float().cpu().numpy() for v in values)  # per latent, ascending
    if len(books) != n_latents:
        raise ValueError(
            f"{type(model).__name__}: the quantizer has {len(books)} codebooks for "
            f"{n_latents} latents"
        )
    return _Bottleneck("scalar", codebooks=books)


def _thin(values: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` evenly spaced entries of sorted ``values``, both ends kept."""
    if len(values) <= n:
        return values
    if n == 1:
        return values[:1]
    return values[np.unique(np.round(np.linspace(0, len(values) - 1, n)).astype(np.int64))]


def _entropy_per_column(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entropy (nats) of each column's value histogram and its number of distinct values."""
    entropy = np.zeros(codes.shape[1])
    distinct = np.zeros(codes.shape[1], np.int64)
    for j in range(codes.shape[1]):  # one np.unique per latent
        _, counts = np.unique(codes[:, j], return_counts=True)
        p = counts / counts.sum()
        entropy[j] = float(-(p * np.log(p)).sum())
        distinct[j] = len(counts)
    return entropy, distinct


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class TraversalPlan:
    """What a traversal sweeps, per latent, and the order latents are shown in.

    Attributes:
        kind: ``"codebook"`` or ``"quantiles"``.
        values: per latent (model order), the swept values ``(S_j,)``: codebook values,
            marginal quantiles, or (VQ-VAE) codebook entry indices.
        activity: ``(D,)`` the activity statistic (see :attr:`criterion`).
        active: ``(D,)`` bool.
        criterion: ``"kl"`` (nats), ``"entropy"`` (nats of the code histogram) or
            ``"variance"`` (relative to the largest).
        order: ``(D,)`` latent indices, most active first (ties: lower index first).
        base: ``(N, F)`` float32 decoder input of each seed image (``F = D·width``).
        width: decoder features per latent (1, or VQ's code dimension).
        vectors: when ``values`` are entry indices: the VQ codebook ``(K, width)`` all
            latents share, or one codebook per latent (a tuple; factorized quantization's
            sub-codebooks); else ``None``.
    """

    kind: str
    values: tuple[np.ndarray, ...]
    activity: np.ndarray
    active: np.ndarray
    criterion: str
    order: np.ndarray
    base: np.ndarray
    width: int = 1
    vectors: np.ndarray | tuple[np.ndarray, ...] | None = None

    @property
    def n_latents(self) -> int:
        return len(self.values)

    @property
    def n_steps(self) -> int:
        return max(len(v) for v in self.values)


def traversal_plan(
    model: Any,
    images: Any,
    *,
    n_steps: int = 10,
    kind: str | None = None,
    marginal_images: Any = None,
    max_value: int = 255,
) -> TraversalPlan:
    """Decide the swept values and the row order of a traversal (see the module docstring).

    Args:
        model: a :class:`~disentkit.models.Model`.
        images: uint8 ``(N, H, W, C)`` seed images.
        n_steps: values per latent (a codebook with fewer values gives fewer).
        kind: ``"codebook"`` (quantized models only), ``"quantiles"`` (not for VQ-VAE), or
            ``None``: codebook for quantized models, quantiles otherwise.
        marginal_images: uint8 images whose codes give the marginals (quantiles, activity
            and VQ entry usage); default ``images``.
        max_value: value of a fully-on pixel (255, or 1 for binary datasets).

    Returns:
        a :class:`TraversalPlan`.
    """
    from disentkit.metrics import active_latents

    n_steps = check_positive_int(n_steps, "n_steps")
    seeds = _check_images(images)
    marginal = seeds if marginal_images is None else _check_images(marginal_images)
    enc_seed = _encode(model, seeds, max_value)
    enc = enc_seed if marginal is seeds else _encode(model, marginal, max_value)
    indices = enc["indices"]
    probe = enc["quantized"] if enc["quantized"] is not None else enc["z"]
    neck = _bottleneck(model, probe.shape[1])
    quantized = neck.kind != "continuous"
    if kind is None:
        kind = "codebook" if quantized else "quantiles"
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)} or None; received {kind!r}")
    if kind == "codebook" and not quantized:
        raise ValueError(
            f"kind='codebook' needs a quantized model; {type(model).__name__} has continuous "
            "latents (use kind='quantiles')"
        )
    if kind == "quantiles" and neck.kind == "vector":
        raise ValueError("kind='quantiles' is undefined for vector-quantized latents; use "
                         "kind='codebook'")

    base_t = enc_seed["quantized"] if quantized else (
        enc_seed["mean"] if enc_seed["mean"] is not None else enc_seed["z"])
    base = base_t.float().numpy().reshape(len(seeds), -1)  # (N, F)

    # activity
    if enc["logvar"] is not None:
        res = active_latents(enc["mean"].double().numpy(), logvar=enc["logvar"].double().numpy())
        activity, active, criterion = res.statistic, res.active, "kl"
    elif quantized:
        codes = (indices if neck.kind == "vector" else enc["quantized"]).numpy()
        activity, distinct = _entropy_per_column(codes)
        active, criterion = distinct > 1, "entropy"
    else:
        res = active_latents(enc["z"].double().numpy())
        activity, active, criterion = res.statistic, res.active, "variance"
    n_latents = len(activity)

    # swept values
    if kind == "codebook" and neck.kind == "vector" and neck.books:
        # one codebook per latent: each sweeps its own most used entries
        codes = indices.numpy()
        picked = []
        for j in range(n_latents):
            counts = np.bincount(codes[:, j], minlength=len(neck.books[j]))
            ranked = np.lexsort((np.arange(len(counts)), -counts))  # most used, low index
            picked.append(np.sort(ranked[:n_steps]))
        values = tuple(picked)
    elif kind == "codebook" and neck.kind == "vector":
        assert neck.vectors is not None
        counts = np.bincount(indices.numpy().ravel(), minlength=len(neck.vectors))
        ranked = np.lexsort((np.arange(len(counts)), -counts))  # most used, then low index
        entries = np.sort(ranked[:n_steps])
        values = tuple(entries.copy() for _ in range(n_latents))
    elif kind == "codebook":
        values = tuple(_thin(book, n_steps) for book in neck.codebooks)
    else:
        source = enc["mean"] if enc["mean"] is not None else enc["z"]
        levels = np.linspace(*QUANTILES, n_steps) if n_steps > 1 else np.array([0.5])
        q = np.quantile(source.double().numpy(), levels, axis=0).T  # (D, S)
        values = tuple(q[j].astype(np.float32) for j in range(n_latents))
    order = np.lexsort((np.arange(n_latents), -np.asarray(activity)))
    return TraversalPlan(
        kind=kind, values=values, activity=np.asarray(activity, np.float64),
        active=np.asarray(active, bool), criterion=criterion, order=order, base=base,
        width=neck.width,
        vectors=(None if neck.kind != "vector" else
                 neck.books if neck.books else neck.vectors),
    )


def _traversal_cells(model: Any, plan: TraversalPlan) -> tuple[np.ndarray, np.ndarray]:
    """Decode every (latent, step, seed): uint8 ``(D, S, N, h, w, 3)`` and filled ``(D, S)``.

    Rows follow ``plan.order``.
    """
    import torch

    d, s, n, width = plan.n_latents, plan.n_steps, plan.base.shape[0], plan.width
    base = plan.base.reshape(1, 1, n, d, width)
    z = np.broadcast_to(base, (d, s, n, d, width)).copy()  # (D rows, S, N, D, width)
    filled = np.zeros((d, s), bool)
    for row, j in enumerate(plan.order):  # one row per latent
        vals = plan.values[j]
        if plan.vectors is None:
            sweep = vals[:, None]  # (S_j, 1)
        else:
            book = plan.vectors[j] if isinstance(plan.vectors, tuple) else plan.vectors
            sweep = book[vals]  # (S_j, width)
        z[row, : len(vals), :, j, :] = sweep[:, None, :]
        z[row, len(vals):, :, j, :] = sweep[-1][None, None, :]  # padding, left blank
        filled[row, : len(vals)] = True
    decoded = _decode(model, torch.from_numpy(z.reshape(d * s * n, d * width)))
    return decoded.reshape(d, s, n, *decoded.shape[1:]), filled


def traversal_grid(
    model: Any,
    images: Any,
    *,
    n_steps: int = 10,
    kind: str | None = None,
    marginal_images: Any = None,
    max_value: int = 255,
    gap: int = 2,
    border: int = 2,
    plan: TraversalPlan | None = None,
) -> np.ndarray:
    """Latent traversals as one picture: a panel per seed image, side by side.

    In each panel, row ``r`` sweeps latent ``plan.order[r]`` over ``plan.values`` (one
    column per value, left to right) while the other latents keep the seed image's code.
    Cells of passive latents are framed in :data:`PASSIVE_COLOUR`.

    Args:
        model: as :func:`traversal_plan`.
        images: as :func:`traversal_plan`.
        n_steps: as :func:`traversal_plan`.
        kind: as :func:`traversal_plan`.
        marginal_images: as :func:`traversal_plan`.
        max_value: as :func:`traversal_plan`.
        gap: background pixels between cells (panels are ``4·gap`` apart).
        border: width of the passive frame around each cell.
        plan: a precomputed plan (the other plan arguments are then ignored).

    Returns:
        uint8 ``(D·(h + 2·border + gap) + gap, N·panel width + (N − 1)·4·gap, 3)``.
    """
    plan = plan or traversal_plan(model, images, n_steps=n_steps, kind=kind,
                                  marginal_images=marginal_images, max_value=max_value)
    cells, filled = _traversal_cells(model, plan)  # (D, S, N, h, w, 3)
    colours = [None if plan.active[j] else PASSIVE_COLOUR for j in plan.order]
    panels = [tile(cells[:, :, i], gap=gap, border=border, border_colours=colours,
                   filled=filled) for i in range(cells.shape[2])]
    return _hconcat(panels, 4 * gap)


def traversal_frames(
    model: Any,
    images: Any,
    *,
    n_steps: int = 10,
    kind: str | None = None,
    marginal_images: Any = None,
    max_value: int = 255,
    gap: int = 2,
    border: int = 2,
    bounce: bool = True,
    plan: TraversalPlan | None = None,
) -> list[np.ndarray]:
    """Latent traversals as animation frames (for :func:`save_gif`).

    Frame ``t`` shows, for every latent (rows, most active first, passive ones framed) and
    every seed image (columns), the decode with that latent at its ``t``-th swept value
    (latents with fewer values stretch their sweep over the frames). With ``bounce`` the
    sweep runs forward then back, so the animation loops smoothly.

    Returns:
        ``T`` uint8 frames ``(D·(h + 2·border + gap) + gap, N·(w + 2·border + gap) + gap, 3)``
        with ``T = S`` (``2S − 2`` with ``bounce`` when ``S > 2``).
    """
    plan = plan or traversal_plan(model, images, n_steps=n_steps, kind=kind,
                                  marginal_images=marginal_images, max_value=max_value)
    cells, _ = _traversal_cells(model, plan)  # (D, S, N, h, w, 3)
    s = plan.n_steps
    colours = [None if plan.active[j] else PASSIVE_COLOUR for j in plan.order]
    lengths = [len(plan.values[j]) for j in plan.order]
    steps = list(range(s))
    if bounce and s > 2:
        steps += list(range(s - 2, 0, -1))
    frames = []
    for t in steps:
        cols = [round(t * (n - 1) / (s - 1)) if s > 1 else 0 for n in lengths]
        frame_cells = cells[np.arange(len(cols)), cols]  # (D, N, h, w, 3)
        frames.append(tile(frame_cells, gap=gap, border=border, border_colours=colours))
    return frames


def save_gif(
    frames: Sequence[np.ndarray], path: str | os.PathLike[str], *, duration: int = 200,
    loop: int = 0,
) -> Path:
    """Write uint8 RGB frames ``(H, W, 3)`` as an animated GIF (Pillow), atomically.

    Pillow merges consecutive identical frames into one longer frame, so the file may hold
    fewer frames than given; the animation's total duration is unchanged.

    Args:
        frames: one or more frames of one size.
        path: the ``.gif`` file (parent folders are created).
        duration: milliseconds per frame.
        loop: times to loop (0: forever).

    Example:
        >>> import tempfile
        >>> frames = [np.full((4, 4, 3), v, np.uint8) for v in (0, 255)]
        >>> p = save_gif(frames, Path(tempfile.mkdtemp()) / "a.gif")
        >>> from PIL import Image
        >>> Image.open(p).n_frames
        2
    """
    from PIL import Image

    from disentkit._atomic import atomic_write

    arrays = [np.asarray(f) for f in frames]
    if not arrays:
        raise ValueError("save_gif needs at least one frame; received none")
    shape = arrays[0].shape
    for a in arrays:
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape != shape or shape[-1] != 3:
            raise ValueError(
                f"frames must be uint8 (H, W, 3) of one size; received {a.dtype} {a.shape} "
                f"beside {shape}"
            )
    pictures = [Image.fromarray(a) for a in arrays]

    def write(tmp: Path) -> None:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=int(duration), loop=int(loop), optimize=False)

    return atomic_write(path, write)


# --------------------------------------------------------------------------- other grids


def _text_mask(text: str) -> np.ndarray:
    """Bool ``(h, w)``: the pixels of ``text`` in Pillow's default bitmap font."""
    from PIL import Image, ImageDraw, ImageFont

    # the bitmap font (not the scalable one Pillow ≥ 10.1 loads by default): crisp when
    # enlarged, the same pixels on every machine
    font = getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()
    _, _, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (max(1, right), max(1, bottom)), 0)
    ImageDraw.Draw(canvas).text((0, 0), text, fill=255, font=font)
    return np.asarray(canvas) > 127


def label_rows(
    grid: np.ndarray,
    labels: Sequence[str],
    *,
    cell_height: int,
    gap: int = 2,
    scale: int | None = None,
) -> np.ndarray:
    """Insert a label band above each row of a grid laid out by :func:`tile`.

    Each label is drawn in Pillow's default bitmap font (11 pixels tall, enlarged ``scale``
    times by repeating pixels, so it stays crisp), in :data:`LABEL_COLOUR` on the
    background, ``gap`` pixels from the left edge, in a band of ``11·scale + 3`` pixels
    just above its row of cells. The grid's pixels are kept; the picture widens (on the
    right, background) only when a label is wider than the grid.

    Args:
        grid: uint8 ``(H, W, 3)`` with ``len(labels)`` rows of cells ``cell_height`` tall,
            ``gap`` apart (as :func:`tile` lays them out).
        labels: one label per row, top to bottom.
        cell_height: height of a row's cells in pixels (with their frame).
        gap: background pixels between rows and above the first.
        scale: enlargement of the font; default ``cell_height // 32`` (at least 1, at
            most 4), so the labels keep pace with larger images.

    Returns:
        uint8 ``(H + R·(11·scale + 3), max(W, widest label + 2·gap), 3)``; row ``i``'s
        band starts at ``gap + i·(cell_height + gap + band)``.

    Example:
        >>> grid = tile(np.zeros((2, 3, 16, 16, 3), np.uint8))
        >>> label_rows(grid, ["input", "output"], cell_height=16).shape
        (66, 56, 3)
    """
    grid = np.asarray(grid)
    if grid.ndim != 3 or grid.shape[-1] != 3 or grid.dtype != np.uint8:
        raise ValueError(f"grid must be uint8 (H, W, 3); received {grid.dtype} {grid.shape}")
    cell_height = check_positive_int(cell_height, "cell_height")
    gap = check_positive_int(gap, "gap", minimum=0)
    rows = len(labels)
    if rows == 0 or gap + rows * (cell_height + gap) > grid.shape[0]:
        raise ValueError(f"labels must be one per row of the grid; received {rows} labels "
                         f"for a grid {grid.shape[0]} pixels tall with rows {cell_height} + "
                         f"{gap} pixels apart")
    scale = (min(4, max(1, cell_height // 32)) if scale is None
             else check_positive_int(scale, "scale"))
    masks = [_text_mask(str(text)).repeat(scale, axis=0).repeat(scale, axis=1)
             for text in labels]  # each (11·s, w·s)
    band = 11 * scale + 3
    width = max(grid.shape[1], max(m.shape[1] for m in masks) + 2 * gap)
    if width > grid.shape[1]:
        pad = np.full((grid.shape[0], width - grid.shape[1], 3), BACKGROUND, np.uint8)
        grid = np.concatenate([grid, pad], axis=1)
    parts, done = [], 0
    for i, mask in enumerate(masks):
        top = gap + i * (cell_height + gap)  # where row i's cells start in the grid
        strip = np.full((band, width, 3), BACKGROUND, np.uint8)
        strip[1:1 + mask.shape[0], gap:gap + mask.shape[1]][mask] = LABEL_COLOUR
        parts += [grid[done:top], strip]
        done = top
    parts.append(grid[done:])
    return np.concatenate(parts)


def reconstruction_grid(
    model: Any, images: Any, *, max_value: int = 255, gap: int = 2, labels: bool = True
) -> np.ndarray:
    """Inputs (top row) above their reconstructions (bottom row), rows labelled.

    Reconstructions decode the deterministic code: the posterior mean for a VAE, the
    quantized code for a quantized model (no sampling), so the picture is reproducible.
    With ``labels``, a band above each row names it, :data:`RECONSTRUCTION_LABELS`
    (``"input"``, ``"reconstruction"``), drawn into the picture by :func:`label_rows`.

    Returns:
        uint8 ``(2·(h + gap) + gap + 2·band, N·(w + gap) + gap, 3)`` (widened to fit the
        labels when ``N`` is small); ``band = 11·max(1, h // 32) + 3``, 0 without labels.
    """
    x = _check_images(images)
    enc = _encode(model, x, max_value)
    z = enc["quantized"] if enc["quantized"] is not None else (
        enc["mean"] if enc["mean"] is not None else enc["z"])
    recon = _decode(model, z.reshape(len(x), -1))
    top = _rgb(x, max_value)
    if top.shape != recon.shape:
        raise ValueError(f"the decoder's images {recon.shape[1:]} differ from the inputs' "
                         f"{top.shape[1:]}")
    grid = tile(np.stack([top, recon]), gap=gap)
    if not labels:
        return grid
    return label_rows(grid, RECONSTRUCTION_LABELS, cell_height=top.shape[1], gap=gap)


def prior_samples(
    model: Any, n: int = 16, seed: int = 0, *, n_cols: int = 8, gap: int = 2
) -> np.ndarray | None:
    """Decodes of ``n`` draws from the model's prior, tiled ``n_cols`` wide; ``None`` if
    the model has no prior.

    Prior: ``N(0, I)`` for a model with a Gaussian posterior (the VAE family); for a
    quantized model each latent independently uniform over its codebook values (VQ-VAE:
    over the codebook entries). Deterministic autoencoders have none. Draws come from a
    ``torch.Generator`` seeded with ``seed``: the same seed gives the same picture.

    Returns:
        uint8 ``(rows·(h + gap) + gap, min(n, n_cols)·(w + gap) + gap, 3)`` or ``None``.
    """
    import torch

    n = check_positive_int(n, "n")
    n_cols = check_positive_int(n_cols, "n_cols")
    shape = tuple(getattr(model.config, "image_shape", ()))
    if len(shape) != 3:
        raise ValueError(f"{type(model).__name__}: prior_samples needs config.image_shape "
                         f"(C, H, W); found {shape!r}")
    c, h, w = shape
    probe = _encode(model, np.zeros((1, h, w, c), np.uint8), 255)
    gen = torch.Generator().manual_seed(int(seed))
    if probe["logvar"] is not None:
        z = torch.randn(n, probe["mean"].shape[1], generator=gen)
    else:
        if probe["quantized"] is None:
            return None
        neck = _bottleneck(model, probe["quantized"].shape[1])
        if neck.kind == "continuous":
            return None
        if neck.kind == "vector":
            assert probe["indices"] is not None
            n_latents = probe["indices"].shape[1]
            cols = [torch.from_numpy(neck.vector_book(j))[
                torch.randint(len(neck.vector_book(j)), (n,), generator=gen)]
                for j in range(n_latents)]  # each (n, width)
            z = torch.stack(cols, 1).reshape(n, -1)
        else:
            cols = [torch.from_numpy(book)[torch.randint(len(book), (n,), generator=gen)]
                    for book in neck.codebooks]
            z = torch.stack(cols, 1)  # (n, D)
    images = _decode(model, z.float())
    rows = math.ceil(n / n_cols)
    width = min(n, n_cols)
    pad = rows * width - n
    cells = np.concatenate([images, np.zeros((pad, *images.shape[1:]), np.uint8)])
    filled = (np.arange(rows * width) < n).reshape(rows, width)
    return tile(cells.reshape(rows, width, *images.shape[1:]), gap=gap, filled=filled)
