"""Models under one interface (see :mod:`disentkit.models._base`). Importing this package
registers every model; it imports torch."""

from disentkit.models import factorized, gan, quantized, vae  # noqa: F401  (register the models)
from disentkit.models._base import (
    MODELS,
    Encoding,
    ExtraStep,
    Model,
    ModelInfo,
    Output,
    build_model,
    noise_source,
    register_model,
)

__all__ = [
    "MODELS",
    "Encoding",
    "ExtraStep",
    "Model",
    "ModelInfo",
    "Output",
    "build_model",
    "noise_source",
    "register_model",
]
