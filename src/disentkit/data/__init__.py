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
from disentkit.data.official import (
    ManualDownloadError,
    OfficialDataset,
    PrepareRequiredError,
    download,
    prepare,
    status,
)
from disentkit.data.procedural import DSpritesProcedural, XYObject
from disentkit.data.sampling import (
    CorrelatedFactorDataset,
    pair_probabilities,
    sample_correlated_factors,
    with_correlated_factors,
)
from disentkit.data.shapes3d_procedural import Shapes3DProcedural

__all__ = [
    "DATASETS",
    "CorrelatedFactorDataset",
    "DSpritesProcedural",
    "DatasetInfo",
    "DatasetSource",
    "FactorDataset",
    "ManualDownloadError",
    "OfficialDataset",
    "PrepareRequiredError",
    "Shapes3DProcedural",
    "XYObject",
    "data_root",
    "download",
    "get_dataset",
    "pair_probabilities",
    "prepare",
    "register_dataset",
    "sample_correlated_factors",
    "status",
    "with_correlated_factors",
]
