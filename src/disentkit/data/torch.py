"""PyTorch batches from a :class:`~disentkit.data.FactorDataset`, a pure function of (seed, step).

:class:`FactorBatchLoader` delivers whole training batches: ``uint8 (B, H, W, C)`` images
and ``int64 (B, K)`` factors as torch tensors. Batch ``t`` depends only on ``(seed, t)``,
never on how many batches were produced before, so a run resumed at step ``t`` sees exactly
the batches an uninterrupted run would have seen, and the number of worker processes does
not change them. How batch ``t`` is drawn (``sampling``):

- ``"uniform"`` (the default for full-grid datasets): ``batch_size`` indices drawn
  uniformly *with replacement* over ``range(len(dataset))`` by
  ``numpy.random.default_rng([seed, t]).integers(0, len(dataset), batch_size)``. For a
  complete factor grid this is disentanglement_lib's training distribution (every factor
  uniform and independent).
- ``"epoch"``: without replacement within an epoch. The infinite sequence
  ``perm_0 ++ perm_1 ++ ...`` with ``perm_e = default_rng([seed, e, 1]).permutation(N)`` is
  cut into consecutive batches; batch ``t`` is positions ``[t·B, (t+1)·B)`` (a batch may
  straddle two epochs). Each process keeps the permutations of the last two epochs it used.
- ``"factors"``: ``dataset.sample_factors(batch_size, default_rng([seed, t]))`` rendered
  with ``images_from_factors``. Use it for datasets whose factors are not drawn uniformly
  (e.g. :class:`~disentkit.data.sampling.CorrelatedFactorDataset`); ``"auto"`` picks it
  whenever the dataset overrides ``sample_factors``, and ``"uniform"`` otherwise.

A batch is produced by one call of ``dataset.images(indices)`` (or
``images_from_factors``): no Python loop per image. With ``num_workers > 0`` a
``torch.utils.data.DataLoader`` runs these calls in worker processes, one whole batch per
item (``batch_size=None``), in step order; workers get the dataset by pickling
(memory-mapped official datasets reopen their file, so pages are shared).

Images stay ``uint8`` until they reach the device: :func:`to_float` moves them there and
only then converts to float ``(B, C, H, W)`` in ``[0, 1]``. :func:`as_representation` turns
a torch encoder into the numpy representation function that the sampling metrics
(``beta_vae_score``, ``factor_vae_score``) call on ``images_from_factors`` output.

torch is imported only when a loader or :func:`to_float` is used; ``import disentkit`` and
``import disentkit.data`` never import it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from disentkit.data.show import max_pixel_value

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["SAMPLING", "FactorBatchLoader", "as_representation", "batch_indices", "to_float"]

Sampling = Literal["auto", "uniform", "epoch", "factors"]
SAMPLING: tuple[str, ...] = ("auto", "uniform", "epoch", "factors")
_EPOCH_STREAM = 1  # third word of the epoch permutations' seed, apart from the batch streams


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is installed in the test environment
        raise ImportError(
            "disentkit.data.torch needs PyTorch: pip install torch (see pytorch.org)"
        ) from None
    return torch


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}; received {value!r}")
    return int(value)


def batch_indices(
    n: int,
    batch_size: int,
    seed: int,
    step: int,
    *,
    sampling: Literal["uniform", "epoch"] = "uniform",
) -> np.ndarray:
    """The dataset indices of training batch ``step``: int64 ``(batch_size,)``.

    A pure function of its arguments (see the module docstring for the two rules).

    Args:
        n: number of images in the dataset.
        batch_size: images per batch.
        seed: non-negative integer seed of the run.
        step: batch number, ≥ 0.
        sampling: ``"uniform"`` (with replacement) or ``"epoch"`` (per-epoch permutations).

    Example:
        >>> batch_indices(10, 4, seed=0, step=3).tolist()
        [5, 8, 9, 8]
        >>> np.random.default_rng([0, 3]).integers(0, 10, 4).tolist()  # the same draw
        [5, 8, 9, 8]
        >>> a = batch_indices(10, 4, 0, 0, sampling="epoch")
        >>> b = batch_indices(10, 4, 0, 1, sampling="epoch")
        >>> c = batch_indices(10, 4, 0, 2, sampling="epoch")
        >>> sorted(np.concatenate([a, b, c[:2]]).tolist())  # epoch 0: each index once
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    return _draw_indices(n, batch_size, seed, step, sampling, {})


def _draw_indices(
    n: int, batch_size: int, seed: int, step: int, sampling: str, cache: dict[int, np.ndarray]
) -> np.ndarray:
    """:func:`batch_indices`, keeping the last two epochs' permutations in ``cache``."""
    n = _check_int(n, "len(dataset)", 1)
    batch_size = _check_int(batch_size, "batch_size", 1)
    seed = _check_int(seed, "seed", 0)
    step = _check_int(step, "step", 0)
    if sampling == "uniform":
        return np.random.default_rng([seed, step]).integers(0, n, batch_size, dtype=np.int64)
    if sampling != "epoch":
        raise ValueError(f"sampling must be 'uniform' or 'epoch'; received {sampling!r}")
    pos = step * batch_size + np.arange(batch_size, dtype=np.int64)  # (B,) positions
    epoch, within = np.divmod(pos, n)
    out = np.empty(batch_size, dtype=np.int64)
    for e in np.unique(epoch).tolist():  # one or two epochs (more only when B > n)
        perm = cache.get(e)
        if perm is None:
            perm = np.random.default_rng([seed, e, _EPOCH_STREAM]).permutation(n)
            while len(cache) >= 2:
                cache.pop(next(iter(cache)))
            cache[e] = perm
        sel = epoch == e
        out[sel] = perm[within[sel]]
    return out


def _resolve_sampling(dataset: Any, sampling: str) -> str:
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {', '.join(map(repr, SAMPLING))}; "
                         f"received {sampling!r}")
    if sampling != "auto":
        return sampling
    from disentkit.data._base import FactorDataset

    if isinstance(dataset, FactorDataset):
        own = getattr(type(dataset), "sample_factors", None)
        return "uniform" if own is FactorDataset.sample_factors else "factors"
    # another object with the same interface: follow its sample_factors when it has one
    needed = ("sample_factors", "images_from_factors", "index")
    return "factors" if all(hasattr(dataset, a) for a in needed) else "uniform"


class _StepBatches:
    """Map-style "dataset" for ``torch.utils.data.DataLoader``: item ``t`` is batch ``t``."""

    def __init__(self, dataset: Any, batch_size: int, seed: int, sampling: str) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.sampling = sampling
        self.n = len(dataset)
        self._perms: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_perms"] = {}  # rebuilt on demand in each worker
        return state

    def indices(self, step: int) -> np.ndarray:
        if self.sampling == "factors":
            return np.asarray(self.dataset.index(self.factors_for(step)), dtype=np.int64)
        return _draw_indices(self.n, self.batch_size, self.seed, step, self.sampling,
                             self._perms)

    def factors_for(self, step: int) -> np.ndarray:
        step = _check_int(step, "step", 0)
        rng = np.random.default_rng([self.seed, step])
        return np.asarray(self.dataset.sample_factors(self.batch_size, rng), dtype=np.int64)

    def numpy_batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        if self.sampling == "factors":
            factors = self.factors_for(step)
            images = self.dataset.images_from_factors(factors)
        else:
            idx = self.indices(step)
            images = self.dataset.images(idx)
            factors = self.dataset.factors(idx)
        images = np.asarray(images)
        name = getattr(self.dataset, "name", type(self.dataset).__name__)
        if images.dtype != np.uint8:
            raise TypeError(f"{name}: images must be uint8 (B, H, W, C); received {images.dtype}")
        if images.ndim != 4 or images.shape[0] != self.batch_size:
            raise ValueError(
                f"{name}: a batch of {self.batch_size} images must have shape "
                f"({self.batch_size}, H, W, C); received {images.shape}"
            )
        if not (images.flags.c_contiguous and images.flags.writeable):
            images = np.array(images, order="C")  # torch.from_numpy needs a writable buffer
        factors = np.ascontiguousarray(factors, dtype=np.int64)
        return images, factors

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch = _torch()
        images, factors = self.numpy_batch(int(step))
        return torch.from_numpy(images), torch.from_numpy(factors)


class _Steps:
    """Sampler of step numbers ``start, start + 1, ...`` up to ``stop`` (or forever)."""

    def __init__(self, start: int, stop: int | None) -> None:
        self.start, self.stop = start, stop

    def __iter__(self) -> Iterator[int]:
        if self.stop is None:
            return itertools.count(self.start)
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless step sampler has no length")
        return max(self.stop - self.start, 0)


def _identity(batch: Any) -> Any:
    return batch


class FactorBatchLoader:
    """Training batches of a factor dataset as torch tensors, a pure function of (seed, step).

    Args:
        dataset: a :class:`~disentkit.data.FactorDataset` (``images``, ``factors``,
            ``__len__``; ``sample_factors``/``images_from_factors``/``index`` for
            ``sampling="factors"``).
        batch_size: images per batch (disentanglement_lib: 64).
        seed: non-negative integer; with the step it decides every batch.
        steps: the step at which iteration stops (exclusive), i.e. the total number of
            training steps of the run; ``None`` iterates forever.
        start_step: the first step iteration yields (e.g. the step a resumed run is at).
        sampling: ``"auto"`` (default), ``"uniform"``, ``"epoch"`` or ``"factors"`` (see the
            module docstring).
        num_workers: worker processes of the ``DataLoader`` (0: batches are produced in the
            calling process). The batches are the same for any number of workers.
        device: where iteration puts the batches (``None``: stay on the CPU).
        pin_memory: page-lock batches before the copy to a CUDA device (default: when
            ``device`` is CUDA).
        prefetch_factor: batches each worker prepares ahead (workers only; torch's default 2).
        multiprocessing_context: passed to the ``DataLoader`` (e.g. ``"spawn"``).

    Example:
        >>> from disentkit.data import get_dataset
        >>> ds = get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)
        >>> loader = FactorBatchLoader(ds, batch_size=4, seed=1, steps=3)
        >>> images, factors = loader.batch(2)
        >>> tuple(images.shape), images.dtype, tuple(factors.shape), factors.dtype
        ((4, 8, 8, 3), torch.uint8, (4, 6), torch.int64)
        >>> [bool((f == factors).all()) for _, f in loader]  # steps 0, 1, 2
        [False, False, True]
        >>> x = loader.to_float(images)
        >>> tuple(x.shape), x.dtype, bool(0 <= x.min() and x.max() <= 1)
        ((4, 3, 8, 8), torch.float32, True)
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 64,
        *,
        seed: int = 0,
        steps: int | None = None,
        start_step: int = 0,
        sampling: Sampling = "auto",
        num_workers: int = 0,
        device: str | torch.device | None = None,
        pin_memory: bool | None = None,
        prefetch_factor: int | None = None,
        multiprocessing_context: Any = None,
    ) -> None:
        missing = [a for a in ("images", "factors", "factor_sizes", "__len__")
                   if not hasattr(dataset, a)]
        if missing:
            raise TypeError(
                f"FactorBatchLoader needs a FactorDataset (images, factors, factor_sizes, "
                f"len); received {type(dataset).__name__} without {', '.join(missing)}"
            )
        self.dataset = dataset
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.seed = _check_int(seed, "seed", 0)
        self.steps = None if steps is None else _check_int(steps, "steps", 0)
        self.start_step = _check_int(start_step, "start_step", 0)
        self.sampling = _resolve_sampling(dataset, sampling)
        if self.sampling == "factors":
            missing = [a for a in ("sample_factors", "images_from_factors", "index")
                       if not hasattr(dataset, a)]
            if missing:
                raise TypeError(f"sampling='factors' needs dataset.{', '.join(missing)}")
        self.num_workers = _check_int(num_workers, "num_workers", 0)
        if prefetch_factor is not None:
            prefetch_factor = _check_int(prefetch_factor, "prefetch_factor", 1)
        self.prefetch_factor = prefetch_factor
        self.multiprocessing_context = multiprocessing_context
        torch = _torch()
        self.device = None if device is None else torch.device(device)
        if pin_memory is None:
            pin_memory = self.device is not None and self.device.type == "cuda"
        self.pin_memory = bool(pin_memory)
        self.max_value = max_pixel_value(dataset)
        self._batches = _StepBatches(dataset, self.batch_size, self.seed, self.sampling)

    def __repr__(self) -> str:
        name = getattr(self.dataset, "name", type(self.dataset).__name__)
        return (
            f"FactorBatchLoader({name!r}, batch_size={self.batch_size}, seed={self.seed}, "
            f"steps={self.steps}, start_step={self.start_step}, sampling={self.sampling!r}, "
            f"num_workers={self.num_workers}, device={self.device})"
        )

    # -- one batch ---------------------------------------------------------------------
    def indices(self, step: int) -> np.ndarray:
        """Dataset indices of batch ``step``: int64 ``(batch_size,)``."""
        return self._batches.indices(_check_int(step, "step", 0))

    def numpy_batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``step`` as numpy: uint8 ``(B, H, W, C)`` images, int64 ``(B, K)`` factors."""
        return self._batches.numpy_batch(_check_int(step, "step", 0))

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``step``: uint8 tensor ``(B, H, W, C)``, int64 tensor ``(B, K)``, on ``device``.

        Produced in the calling process; the same tensors iteration yields at that step.
        """
        images, factors = self._batches[_check_int(step, "step", 0)]
        return self._to_device(images), self._to_device(factors)

    # -- iteration ---------------------------------------------------------------------
    def __len__(self) -> int:
        if self.steps is None:
            raise TypeError("an endless FactorBatchLoader (steps=None) has no length")
        return max(self.steps - self.start_step, 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate(self.start_step, self.steps)

    def iterate(
        self, start_step: int = 0, stop_step: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of steps ``start_step, ..., stop_step - 1`` (forever if ``None``).

        With ``num_workers > 0`` the batches come from a ``DataLoader`` whose workers are
        started by this call and stopped when the iterator is exhausted or discarded.
        """
        start = _check_int(start_step, "start_step", 0)
        stop = None if stop_step is None else _check_int(stop_step, "stop_step", 0)
        if self.num_workers == 0:
            steps = itertools.count(start) if stop is None else range(start, stop)
            for step in steps:
                yield self.batch(step)
            return
        torch = _torch()
        loader = torch.utils.data.DataLoader(
            self._batches,  # type: ignore[arg-type]
            batch_size=None,  # each item is already a whole batch
            sampler=_Steps(start, stop),
            num_workers=self.num_workers,
            collate_fn=_identity,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor,
            multiprocessing_context=self.multiprocessing_context,
            # The DataLoader draws its workers' base seed from this generator, not from
            # torch's global one, so iterating never changes the training run's random state.
            generator=torch.Generator().manual_seed(self.seed),
        )
        for images, factors in loader:
            yield self._to_device(images), self._to_device(factors)

    # -- conversion ----------------------------------------------------------------------
    def to_float(self, images: Any, dtype: Any = None) -> torch.Tensor:
        """:func:`to_float` with this loader's device and the dataset's pixel maximum."""
        return to_float(images, self.device, max_value=self.max_value, dtype=dtype)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self.device is None:
            return t
        return t.to(self.device, non_blocking=self.pin_memory)


def to_float(
    images: Any,
    device: str | torch.device | None = None,
    *,
    max_value: int = 255,
    dtype: Any = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 images ``(B, H, W, C)`` → float ``(B, C, H, W)`` in ``[0, 1]``, on ``device``.

    The uint8 batch is moved first (a quarter of the bytes of float32) and converted there.

    Args:
        images: uint8 torch tensor or numpy array ``(B, H, W, C)``.
        device: target device (``None``: where ``images`` already is).
        max_value: the value of a fully-on pixel: 255, or 1 for binary datasets stored as
            0/1 such as dSprites (:func:`~disentkit.data.show.max_pixel_value` tells).
        dtype: floating dtype (default ``torch.float32``).
        channels_last: return the ``(B, C, H, W)`` view in channels-last memory format (the
            layout the uint8 data already has; faster convolutions on some GPUs) instead of
            a contiguous copy.

    Returns:
        float tensor ``(B, C, H, W)`` with values ``images / max_value``.

    Example:
        >>> x = to_float(np.full((2, 4, 4, 3), 255, np.uint8))
        >>> tuple(x.shape), x.dtype, float(x.max())
        ((2, 3, 4, 4), torch.float32, 1.0)
    """
    torch = _torch()
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch tensor or numpy array; received "
                        f"{type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8; received {images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (B, H, W, C); received {tuple(images.shape)}")
    if isinstance(max_value, bool) or not isinstance(max_value, int | np.integer) or not (
        1 <= max_value <= 255
    ):
        raise ValueError(f"max_value must be an integer in [1, 255]; received {max_value!r}")
    dtype = torch.float32 if dtype is None else dtype
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating dtype; received {dtype}")
    if device is not None:
        images = images.to(device, non_blocking=True)
    x = images.permute(0, 3, 1, 2).to(dtype)  # (B, C, H, W), channels-last strides
    x = x.div_(float(max_value))
    if channels_last:
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def as_representation(
    encode: Callable[[torch.Tensor], torch.Tensor],
    *,
    device: str | torch.device | None = None,
    max_value: int = 255,
    dtype: Any = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """A sampling metric's representation function from a torch encoder.

    Sampling metrics call ``representation(observations)`` with what the dataset's
    ``images_from_factors`` returns, uint8 numpy ``(b, H, W, C)``, and expect numpy latents
    ``(b, D)``. The returned function converts with :func:`to_float` on ``device``, calls
    ``encode`` under ``torch.inference_mode()`` and hands back float64 numpy.

    Args:
        encode: maps float images ``(b, C, H, W)`` in ``[0, 1]`` to latents ``(b, D)``
            (e.g. ``model.representation`` or an ``nn.Module``).
        device: where to run; default: the device of ``encode``'s parameters (for a module
            or a module's bound method), else the CPU.
        max_value: the dataset's fully-on pixel value (255; 1 for 0/1 dSprites; see
            :func:`~disentkit.data.show.max_pixel_value`).
        dtype: floating dtype of the images handed to ``encode`` (default float32).

    Example:
        >>> import torch
        >>> from disentkit.data import get_dataset
        >>> ds = get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)
        >>> rep = as_representation(lambda x: x.mean(dim=(2, 3)))  # mean colour (b, 3)
        >>> z = rep(ds.images_from_factors(ds.sample_factors(5, rng=0)))
        >>> z.shape, z.dtype
        ((5, 3), dtype('float64'))
    """
    torch = _torch()
    if not callable(encode):
        raise TypeError(f"encode must be callable; received {type(encode).__name__}")
    if device is None:
        owner = encode if hasattr(encode, "parameters") else getattr(encode, "__self__", None)
        params = getattr(owner, "parameters", None)
        first = next(iter(params()), None) if callable(params) else None
        device = first.device if first is not None else torch.device("cpu")

    def representation(observations: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            z = encode(to_float(observations, device, max_value=max_value, dtype=dtype))
        if not isinstance(z, torch.Tensor):
            raise TypeError(
                f"encode must return a torch tensor (b, D); received {type(z).__name__}"
            )
        return z.detach().to("cpu", torch.float64).numpy()

    name = getattr(encode, "__qualname__", type(encode).__name__)
    representation.__qualname__ = f"as_representation({name})"
    return representation
