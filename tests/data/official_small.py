"""Official datasets on the tiny files of :mod:`tests.data.fixtures`, at reduced sizes.

SmallNORB and Cars3D are prepared at a reduced output size and the PNG datasets on reduced
grids by replacing constants of their spec (:func:`patched`); the code path is the real one.
:data:`WRITERS` writes each official dataset's released files where the loader looks for
them, so a test can build any registered official dataset offline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest

from disentkit.data import official
from tests.data import fixtures as fx

FALCOR_SMALL = (2, 2, 1, 1, 1, 1, 3)
ISAAC_SMALL = (2, 1, 1, 1, 1, 1, 1, 2, 3)
#: spec constants replaced for the tests: output sizes and (PNG datasets) the grid
SMALL = {"smallnorb": {"image_size": 16}, "cars3d": {"image_size": 16},
         "falcor3d": {"factor_sizes": FALCOR_SMALL}, "isaac3d": {"factor_sizes": ISAAC_SMALL}}


@contextmanager
def patched(name: str, **changes) -> Iterator[None]:
    """Replace constants of a dataset's spec (reduced grid or output size)."""
    with pytest.MonkeyPatch.context() as mp:
        spec = official._SPECS[name]
        if "factor_sizes" in changes and spec.fmt == "png":
            changes["factor_values"] = tuple(tuple(np.linspace(0, 1, s))
                                             for s in changes["factor_sizes"])
        mp.setitem(official._SPECS, name, dataclasses.replace(spec, **changes))
        yield


@contextmanager
def small(*names: str) -> Iterator[None]:
    """:data:`SMALL`'s replacements for ``names`` (default: every dataset in it)."""
    with ExitStack() as stack:
        for name in names or tuple(SMALL):
            if name in SMALL:
                stack.enter_context(patched(name, **SMALL[name]))
        yield


def _mpi3d(file: str, sizes=fx.MPI3D_SIZES) -> Callable[[Path], None]:
    return lambda folder: fx.write_mpi3d(folder / file, sizes) and None


#: official dataset name → writer of its released files into ``<root>/<name>/``
WRITERS: dict[str, Callable[[Path], object]] = {
    "dsprites": lambda folder: fx.write_dsprites_npz(
        folder / f"{fx.DSPRITES_NAME}.npz", folder.parent / "UNPICKLED"),
    "shapes3d": lambda folder: fx.write_shapes3d(folder / "3dshapes.h5"),
    "mpi3d_toy": _mpi3d("mpi3d_toy.npz"),
    "mpi3d_realistic": _mpi3d("mpi3d_realistic.npz"),
    "mpi3d_real": _mpi3d("mpi3d_real.npz"),
    "mpi3d_complex": _mpi3d("real3d_complicated_shapes_ordered.npz", fx.MPI3D_COMPLEX_SIZES),
    "smallnorb": lambda folder: fx.write_smallnorb(folder),
    "cars3d": lambda folder: fx.write_cars3d(folder / "nips2015-analogy-data.tar.gz"),
    "falcor3d": lambda folder: fx.write_png_dataset(folder, "train-rec.labels", FALCOR_SMALL),
    "isaac3d": lambda folder: fx.write_png_dataset(folder, "labels.npy", ISAAC_SMALL),
}
