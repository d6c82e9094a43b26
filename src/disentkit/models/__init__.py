"""Models under one interface (see :mod:`disentkit.models._base`) and saved models
(:mod:`disentkit.models.saved`: safetensors + JSON, never pickle). Importing this package
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
from disentkit.models.saved import (
    FORMAT_VERSION,
    MODEL_FORMAT,
    disentkit_model_teacher,
    load_model,
    read_model_info,
    save_model,
)

__all__ = [
    "FORMAT_VERSION",
    "MODELS",
    "MODEL_FORMAT",
    "Encoding",
    "ExtraStep",
    "Model",
    "ModelInfo",
    "Output",
    "build_model",
    "disentkit_model_teacher",
    "load_model",
    "noise_source",
    "read_model_info",
    "register_model",
    "save_model",
]
