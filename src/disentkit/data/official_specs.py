"""What disentkit knows about each official release: files, URLs, checksums, licences,
factor names, sizes and values, and how the files are converted.

Checksums come from public sources only (tensorflow/datasets ``url_checksums``); where no
public sha256 exists the list is empty, the file loads without a release check, and its
digest is still recorded in the dataset's source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NORB_SPLITS = {
    "train": "smallnorb-5x46789x9x18x6x2x96x96-training-{}.mat.gz",
    "test": "smallnorb-5x01235x9x18x6x2x96x96-testing-{}.mat.gz",
}
"""SmallNORB file name per split, ``{}`` being ``dat``, ``cat`` or ``info``."""


@dataclass(frozen=True)
class OfficialSpec:
    """Everything disentkit knows about one official release.

    Attributes:
        name: registry name (also the folder under the data root).
        fmt: converter / reader: dsprites, shapes3d, mpi3d, smallnorb, cars3d or png.
        factor_names, factor_sizes, factor_values: the stored grid (for SmallNORB it
            includes ``instance``, which the default view hides).
        files: released file names needed (a trailing ``/`` marks a folder).
        urls: download address per file (``"archive"`` for a manual archive).
        sha256: known release checksums per file name (several when re-issued).
        alternatives: other accepted names per file (dSprites: the ``.hdf5`` copy).
        subdirs: folders below ``<root>/<name>/`` searched in order (an archive's folder).
        image_size, resample: resizing at prepare time, or ``None``.
        direct: ``"memory"`` / ``"mmap"`` when the files load without a prepared cache.
        manual: instructions when :func:`download` cannot fetch the release.
    """

    name: str
    fmt: str
    description: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    factor_values: tuple[tuple[Any, ...], ...]
    files: tuple[str, ...]
    urls: Mapping[str, str]
    licence: str
    sha256: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alternatives: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    subdirs: tuple[str, ...] = ("",)
    procedural_alternative: str | None = None
    image_size: int | None = None
    resample: str = "lanczos"
    direct: str | None = None
    manual: str | None = None

    @property
    def n_images(self) -> int:
        return int(np.prod(self.factor_sizes, dtype=np.int64))


def _lin(a: float, b: float, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.linspace(a, b, n))


def _ints(n: int) -> tuple[int, ...]:
    return tuple(range(n))


_DSPRITES = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64"
_DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset/raw/master/"
_NORB_URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
_MPI3D_URL = "https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/"
_GDRIVE = "https://drive.google.com/uc?export=download&id="
_CC_BY = "CC BY 4.0"
_MPI3D_NAMES = ("object_color", "object_shape", "object_size", "camera_height",
                "background_color", "horizontal_axis", "vertical_axis")
_MPI3D_COMMON = (("small", "large"), ("top", "center", "bottom"),
                 ("purple", "sea_green", "salmon"), _ints(40), _ints(40))
_MPI3D_SIX = (("white", "green", "red", "blue", "brown", "olive"),
              ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere"), *_MPI3D_COMMON)
_NORB_FILES = tuple(t.format(k) for t in NORB_SPLITS.values() for k in ("dat", "cat", "info"))


def _mpi3d(name: str, file: str, url: str, values: tuple, sizes: tuple[int, ...],
           what: str) -> OfficialSpec:
    return OfficialSpec(
        name=name, fmt="mpi3d", description=f"MPI3D {what} (official .npz)",
        factor_names=_MPI3D_NAMES, factor_sizes=sizes, factor_values=values,
        files=(file,), urls={file: url}, licence=_CC_BY, direct="mmap",
    )


def _png(name: str, labels: str, archive_id: str, names: tuple[str, ...],
         sizes: tuple[int, ...], what: str) -> OfficialSpec:
    folder = f"{name[0].upper()}{name[1:-2]}3D_down128"
    url = _GDRIVE + archive_id
    return OfficialSpec(
        name=name, fmt="png", description=f"{what} (official 128² PNG release, resized to 64²)",
        factor_names=names, factor_sizes=sizes,
        factor_values=tuple(_lin(0.0, 1.0, s) for s in sizes),
        files=(labels, "images/"), urls={"archive": url}, licence=f"{_CC_BY} (NVIDIA)",
        subdirs=("", folder), image_size=64, resample="bicubic",
        manual=(f"download the 128x128 archive from {url} (NVlabs/High-res-disentanglement-"
                f"datasets README), extract it and put {folder}/{labels} and {folder}/images/ "
                f"in the dataset folder (or keep the {folder}/ folder inside it)"),
    )


SPECS: dict[str, OfficialSpec] = {
    "dsprites": OfficialSpec(
        name="dsprites", fmt="dsprites", description="dSprites (official .npz or .hdf5)",
        factor_names=("shape", "scale", "orientation", "posX", "posY"),
        factor_sizes=(3, 6, 40, 32, 32),
        factor_values=(("square", "ellipse", "heart"), _lin(0.5, 1.0, 6),
                       _lin(0.0, 2 * np.pi, 40), _lin(0.0, 1.0, 32), _lin(0.0, 1.0, 32)),
        files=(f"{_DSPRITES}.npz",), alternatives={f"{_DSPRITES}.npz": (f"{_DSPRITES}.hdf5",)},
        urls={f"{_DSPRITES}.npz": f"{_DSPRITES_URL}{_DSPRITES}.npz",
              f"{_DSPRITES}.hdf5": f"{_DSPRITES_URL}{_DSPRITES}.hdf5"},
        # No checksum recorded: none could be confirmed from a second public source.
        licence="Apache-2.0", procedural_alternative="dsprites_procedural", direct="memory",
    ),
    "shapes3d": OfficialSpec(
        name="shapes3d", fmt="shapes3d", description="Shapes3D (official 3dshapes.h5)",
        factor_names=("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
        factor_sizes=(10, 10, 10, 8, 4, 15),
        factor_values=(_lin(0, 0.9, 10), _lin(0, 0.9, 10), _lin(0, 0.9, 10),
                       _lin(0.75, 1.25, 8), (0.0, 1.0, 2.0, 3.0), _lin(-30, 30, 15)),
        files=("3dshapes.h5",), urls={"3dshapes.h5": "https://storage.googleapis.com/3d-shapes/3dshapes.h5"},
        # published with the file's size (267,573,662 bytes) in more than one public loader
        sha256={"3dshapes.h5": (
            "0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785",)},
        licence="Apache-2.0", procedural_alternative="shapes3d_procedural",
    ),
    "mpi3d_toy": _mpi3d("mpi3d_toy", "mpi3d_toy.npz", _MPI3D_URL + "mpi3d_toy.npz", _MPI3D_SIX,
                        (6, 6, 2, 3, 3, 40, 40), "toy (simplistic renders)"),
    "mpi3d_realistic": _mpi3d("mpi3d_realistic", "mpi3d_realistic.npz",
                              _MPI3D_URL + "mpi3d_realistic.npz", _MPI3D_SIX,
                              (6, 6, 2, 3, 3, 40, 40), "realistic (realistic renders)"),
    "mpi3d_real": _mpi3d("mpi3d_real", "mpi3d_real.npz", _MPI3D_URL + "mpi3d_real.npz",
                         _MPI3D_SIX, (6, 6, 2, 3, 3, 40, 40), "real (camera images)"),
    "mpi3d_complex": _mpi3d(
        "mpi3d_complex", "real3d_complicated_shapes_ordered.npz",
        _GDRIVE + "1Tp8eTdHxgUMtsZv5uAoYAbJR1BOa_OQm",
        (("yellow", "green", "olive", "red"),
         ("coffee_cup", "tennis_ball", "croissant", "beer_cup"), *_MPI3D_COMMON),
        (4, 4, 2, 3, 3, 40, 40), "real_complex (camera images, complex shapes)"),
    "smallnorb": OfficialSpec(
        name="smallnorb", fmt="smallnorb",
        description="SmallNORB, both splits, left camera, 64² (official .mat.gz)",
        factor_names=("category", "instance", "elevation", "azimuth", "lighting"),
        factor_sizes=(5, 10, 9, 18, 6),
        factor_values=(("animal", "human", "airplane", "truck", "car"), _ints(10),
                       tuple(range(30, 75, 5)), tuple(range(0, 360, 20)), _ints(6)),
        files=_NORB_FILES, urls={f: _NORB_URL + f for f in _NORB_FILES},
        alternatives={f: (f.removesuffix(".gz"),) for f in _NORB_FILES},  # gunzipped copies
        # No checksums recorded: none could be confirmed from a second public source.
        licence="research use; see the NORB page's terms", image_size=64,
    ),
    "cars3d": OfficialSpec(
        name="cars3d", fmt="cars3d", description="Cars3D, 64² (official nips2015 tarball)",
        factor_names=("elevation", "azimuth", "object"), factor_sizes=(4, 24, 183),
        factor_values=(_ints(4), tuple(range(0, 360, 15)), _ints(183)),
        files=("nips2015-analogy-data.tar.gz",),
        urls={"nips2015-analogy-data.tar.gz":
              "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz"},
        licence="none stated with the release (research data of Reed et al. 2015)",
        image_size=64,
    ),
    "falcor3d": _png("falcor3d", "train-rec.labels", "1XAQfFK1x6cpN1eiovbP0hVfLTm5SsSoJ",
                     ("lighting_intensity", "lighting_x_dir", "lighting_y_dir",
                      "lighting_z_dir", "camera_x_pos", "camera_y_pos", "camera_z_pos"),
                     (5, 6, 6, 6, 6, 6, 6), "Falcor3D"),
    "isaac3d": _png("isaac3d", "labels.npy", "1OmQ1G2wnm6eTsSFGTKFZZAh5D3nQTW1B",
                    ("object_shape", "robot_x_move", "robot_y_move", "camera_height",
                     "object_scale", "lighting_intensity", "lighting_y_dir", "object_color",
                     "wall_color"),
                    (3, 8, 5, 4, 4, 4, 6, 4, 4), "Isaac3D"),
}
