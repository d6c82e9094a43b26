"""The ground-truth factor dataset interface and the dataset registry.

A :class:`FactorDataset` is a set of images with known factors of variation, laid out as
the complete grid of factor values (``len(ds) == prod(factor_sizes)``) unless a subclass
says otherwise. Index ``i`` and factor vector ``f`` correspond by the ravel-multi-index
rule with the last factor varying fastest (``numpy.ravel_multi_index``), the layout of
the official dSprites and Shapes3D files.

Everything is batch-first: ``images(indices)`` returns ``uint8 (B, H, W, C)`` for a whole
batch, with no Python loop per image in the hot path.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from disentkit._random import SeedLike, as_generator
from disentkit.registry import Registry


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where official dataset files live: ``data_dir``, else ``$DISENTKIT_DATA``, else
    ``~/.cache/disentkit``. Each dataset has a folder named after it below the root."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("DISENTKIT_DATA")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/disentkit").expanduser()


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's images come from, recorded with every run and score.

    Attributes:
        name: registry name.
        kind: ``"procedural"`` (rendered by disentkit) or ``"official"`` (the released files).
        path: the file or folder read, for official datasets.
        sha256: checksum of the file read (official datasets), or ``None``.
        known_release: whether the checksum matches a known release.
        version: renderer version for procedural datasets (bumped when pixels change).
    """

    name: str
    kind: Literal["procedural", "official"]
    path: str | None = None
    sha256: str | None = None
    known_release: bool | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "sha256": self.sha256,
            "known_release": self.known_release,
            "version": self.version,
        }


class FactorDataset(abc.ABC):
    """Images with ground-truth factors of variation.

    Subclasses set ``name``, ``factor_names``, ``factor_sizes``, ``image_shape`` and
    ``source``, and implement :meth:`images_from_factors`. Datasets stored as files in grid
    order override :meth:`images` to read by index directly.

    Attributes:
        name: registry name.
        factor_names: one name per factor.
        factor_sizes: number of values of each factor.
        image_shape: ``(H, W, C)`` of each image.
        factor_values: per factor, the physical value of each class index (e.g. scale
            0.5–1.0), or the class indices themselves when there is no physical value.
        source: :class:`DatasetSource`.
    """

    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    image_shape: tuple[int, int, int]
    source: DatasetSource

    @property
    def factor_values(self) -> tuple[np.ndarray, ...]:
        return tuple(np.arange(s) for s in self.factor_sizes)

    @property
    def max_pixel_value(self) -> int:
        """The value of a full-intensity pixel: 255 (images map to ``[0, 1]`` by ``/ 255``),
        or 1 for binary images kept as 0/1 (dSprites with ``pixel_range="01"``)."""
        return 255

    @property
    def n_factors(self) -> int:
        return len(self.factor_sizes)

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    def __repr__(self) -> str:
        pairs = zip(self.factor_names, self.factor_sizes, strict=True)
        factors = ", ".join(f"{n}={s}" for n, s in pairs)
        return (
            f"{type(self).__name__}({self.name!r}, {len(self):,} images "
            f"{self.image_shape}, {factors})"
        )

    # -- index <-> factors -------------------------------------------------------------
    def _check_indices(self, indices: object) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers; received dtype {idx.dtype}")
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(
                f"{self.name}: indices must lie in [0, {len(self)}); received values in "
                f"[{idx.min()}, {idx.max()}]"
            )
        return idx

    def check_factors(self, factors: object) -> np.ndarray:
        """Validate a batch of factor vectors ``(B, K)`` against ``factor_sizes``."""
        f = np.asarray(factors)
        if f.ndim != 2 or f.shape[1] != self.n_factors:
            raise ValueError(
                f"{self.name}: factors must have shape (batch, {self.n_factors}) "
                f"({', '.join(self.factor_names)}); received shape {f.shape}"
            )
        if f.dtype.kind not in "iu":
            raise TypeError(
                f"{self.name}: factors must be integer class indices; received {f.dtype}"
            )
        f = f.astype(np.int64)
        sizes = np.asarray(self.factor_sizes)
        bad = (f < 0) | (f >= sizes)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"{self.name}: factor {self.factor_names[col]!r} takes values in "
                f"[0, {sizes[col]}); received {f[row, col]} at row {row}"
            )
        return f

    def factors(self, indices: object) -> np.ndarray:
        """Factor class indices ``int64 (B, K)`` of the images at ``indices``."""
        idx = self._check_indices(indices)
        return np.stack(np.unravel_index(idx, self.factor_sizes), axis=1).astype(np.int64)

    def index(self, factors: object) -> np.ndarray:
        """Image indices ``int64 (B,)`` of factor vectors ``(B, K)`` (last factor fastest)."""
        f = self.check_factors(factors)
        return np.ravel_multi_index(tuple(f.T), self.factor_sizes).astype(np.int64)

    def sample_factors(self, n: int, rng: SeedLike = None) -> np.ndarray:
        """``n`` factor vectors drawn uniformly and independently per factor: ``(n, K)``."""
        gen = as_generator(rng)
        return np.stack([gen.integers(0, s, n) for s in self.factor_sizes], axis=1)

    # -- images --------------------------------------------------------------------------
    @abc.abstractmethod
    def images_from_factors(self, factors: object) -> np.ndarray:
        """Images ``uint8 (B, H, W, C)`` for factor vectors ``(B, K)``."""

    def images(self, indices: object) -> np.ndarray:
        """Images ``uint8 (B, H, W, C)`` at ``indices``."""
        return self.images_from_factors(self.factors(indices))

    def info(self) -> dict[str, Any]:
        """Name, factors with sizes and values, number of images, image shape and source."""
        return {
            "name": self.name,
            "n_images": len(self),
            "image_shape": list(self.image_shape),
            "factors": {
                n: {"size": int(s), "values": np.asarray(v).tolist()}
                for n, s, v in zip(
                    self.factor_names, self.factor_sizes, self.factor_values, strict=True
                )
            },
            "source": self.source.to_dict(),
        }


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    Attributes:
        name: registry name.
        factory: builds the dataset: ``factory(data_dir=None, **options) -> FactorDataset``.
        kind: ``"procedural"`` or ``"official"``.
        description: one line.
        factor_names, factor_sizes: the grid, known without building the dataset.
        files: for official datasets, the file names expected under ``<root>/<name>/``.
        urls: official download addresses of those files.
        sha256: known release checksums per file name (several when re-issued).
        licence: the dataset's licence.
        procedural_alternative: the registry name to use without the files.
    """

    name: str
    factory: Callable[..., FactorDataset]
    kind: Literal["procedural", "official"]
    description: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    files: tuple[str, ...] = ()
    urls: Mapping[str, str] = field(default_factory=dict)
    sha256: Mapping[str, Sequence[str]] = field(default_factory=dict)
    licence: str = ""
    procedural_alternative: str | None = None


#: Every registered dataset, by name (:class:`DatasetInfo` entries); ``disentkit data list``
#: lists them.
DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register_dataset(
    name: str,
    *,
    kind: Literal["procedural", "official"],
    description: str,
    factor_names: Sequence[str],
    factor_sizes: Sequence[int],
    **meta: Any,
) -> Callable[[Callable[..., FactorDataset]], Callable[..., FactorDataset]]:
    """Register a dataset factory under ``name`` (decorator)."""

    def decorator(factory: Callable[..., FactorDataset]) -> Callable[..., FactorDataset]:
        DATASETS.add(
            name,
            DatasetInfo(
                name=name,
                factory=factory,
                kind=kind,
                description=description,
                factor_names=tuple(factor_names),
                factor_sizes=tuple(int(s) for s in factor_sizes),
                **meta,
            ),
        )
        return factory

    return decorator


def get_dataset(name: str, *, data_dir: str | os.PathLike[str] | None = None,
                download: bool = False, **options: Any) -> FactorDataset:
    """Build the dataset registered as ``name``.

    Args:
        name: registry name (``disentkit data list``).
        data_dir: root of official dataset files (see :func:`data_root`).
        download: for an official dataset whose files are missing, download them first
            (resumable and checksum-verified, like ``disentkit data download NAME``);
            procedural datasets have nothing to download and ignore it.
        options: dataset options (e.g. ``image_size``, ``color``), checked by the factory.

    Raises:
        KeyError: unknown name (the message lists the known ones).
        FileNotFoundError: an official dataset whose files are missing (the message names
            the expected path, the download command and the procedural alternative).
        ConnectionError, ValueError: with ``download=True``, the download failed or its
            checksum matches no known release.
        disentkit.data.ManualDownloadError: with ``download=True``, a release that must be
            fetched by hand (the message says how).
    """
    info = DATASETS[name]
    if download and info.kind == "official":
        options["download"] = True
    return info.factory(data_dir=data_dir, **options)
