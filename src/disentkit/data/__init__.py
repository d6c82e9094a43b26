"""Datasets with ground-truth factors: procedural ones rendered offline (the default) and
loaders for the official files. Importing this package registers them all."""

from disentkit.data._base import (
    DATASETS,
    DatasetInfo,
    DatasetSource,
    FactorDataset,
    data_root,
    get_dataset,
    register_dataset,
)
from disentkit.data.shapes3d_procedural import Shapes3DProcedural

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetSource",
    "FactorDataset",
    "Shapes3DProcedural",
    "data_root",
    "get_dataset",
    "register_dataset",
]
