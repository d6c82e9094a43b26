"""Saved models: the weights to share and the recipe to rebuild them.

``model.safetensors`` + ``model.json`` hold a model's weights and the recipe to rebuild it
(registry name, model config, disentkit version, data set, step). :func:`load_model` reads
them with safetensors and JSON only, never pickle, so a model file from elsewhere cannot
run code. The same JSON is embedded in the safetensors header (metadata key
``"disentkit"``), so a lone ``.safetensors`` file is enough.

Both files are written atomically (:func:`disentkit._atomic.atomic_write`). The trainer's
resume state (``checkpoints/last.ckpt``) is another file for another audience: see
:mod:`disentkit.train.checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from disentkit._atomic import atomic_write, jsonable, write_json
from disentkit._validation import about_file
from disentkit._version import __version__
from disentkit.models._base import MODELS, Model, build_model
from disentkit.nn.teachers import ModelTeacher
from disentkit.rundir import MODEL_JSON_NAME, WEIGHTS_NAME, read_json

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "FORMAT_VERSION",
    "MODEL_FORMAT",
    "MODEL_JSON_NAME",
    "WEIGHTS_NAME",
    "disentkit_model_teacher",
    "load_model",
    "read_model_info",
    "save_model",
]

#: The ``format`` recorded in a saved model's metadata.
MODEL_FORMAT = "disentkit-model"
#: The version of the saved-model layout, raised when it changes.
FORMAT_VERSION = 1
_METADATA_KEY = "disentkit"


# --------------------------------------------------------------------------- shareable weights


def save_model(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights to safetensors and its recipe to JSON, atomically.

    Args:
        model: a registered :class:`~disentkit.models.Model` (``name``, ``config_dict()``).
        path: a run directory (``model.safetensors`` and ``model.json`` are written in it)
            or a ``.safetensors`` file (the JSON goes beside it, same stem).
        info: extra JSON-friendly fields for ``model.json`` (``data``, ``step``, ...).

    Returns:
        the path of the ``.safetensors`` file.
    """
    from safetensors.torch import save_model as st_save_model

    p = Path(path).expanduser()
    weights = p if p.suffix == ".safetensors" else p / WEIGHTS_NAME
    name = getattr(model, "name", "")
    if not name:
        raise ValueError(
            f"save_model needs a registered model (with a registry name); received "
            f"{type(model).__name__}"
        )
    record = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "model": name,
        "config": model.config_dict(),
        "representation_kinds": list(getattr(model, "representation_kinds", ())),
        "disentkit_version": __version__,
        **(info or {}),
    }
    record = jsonable(record)
    metadata = {_METADATA_KEY: json.dumps(record, allow_nan=False)}
    # force_contiguous: weights trained channels-last are written in the standard layout
    atomic_write(weights, lambda tmp: st_save_model(model, str(tmp), metadata=dict(metadata),
                                                   force_contiguous=True))
    write_json(weights.with_suffix(".json"), record)
    return weights


def read_model_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model.json`` record of a run directory, ``.safetensors`` or ``.json`` file.

    Reads the JSON file beside the weights, else the copy in the safetensors header.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / WEIGHTS_NAME
    json_path = p if p.suffix == ".json" else p.with_suffix(".json")
    if json_path.is_file():
        record = read_json(json_path)
    elif p.is_file():
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt") as fh:
                meta = fh.metadata() or {}
        except Exception as exc:  # safetensors raises its own error types
            raise ValueError(f"cannot read {str(p)!r} as safetensors: {exc}") from None
        if _METADATA_KEY not in meta:
            raise ValueError(
                f"{str(p)!r} carries no disentkit model record and no {json_path.name} lies "
                "beside it"
            )
        record = json.loads(meta[_METADATA_KEY])
    else:
        raise FileNotFoundError(
            f"no saved model at {str(Path(path))!r} (expected {WEIGHTS_NAME} and "
            f"{MODEL_JSON_NAME}; a run writes them when training ends)"
        )
    if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise ValueError(f"{str(json_path)!r} is not a disentkit model record")
    return record


def load_model(path: str | os.PathLike[str], *, device: Any = None) -> Model:
    """Rebuild a saved model: registry name + config from JSON, weights from safetensors.

    Nothing is unpickled, so a model file from elsewhere cannot run code.

    Args:
        path: a run directory, its ``model.safetensors`` or its ``model.json``.
        device: where to put the model (default: CPU).

    Returns:
        the model in eval mode.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_model as st_load_model

    p = Path(path).expanduser()
    record = read_model_info(p)
    if p.is_dir():
        weights = p / WEIGHTS_NAME
    elif p.suffix == ".json":
        weights = p.with_suffix(".safetensors")
    else:
        weights = p
    if not weights.is_file():
        raise FileNotFoundError(f"weights file {str(weights)!r} is missing")
    try:  # the tensors' names and shapes, from the header alone
        with safe_open(str(weights), framework="pt") as fh:
            stored = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as exc:  # safetensors' own error type: a truncated or damaged file
        raise ValueError(
            f"{str(weights)!r} is not a readable safetensors file ({exc}); it is damaged or "
            "incomplete"
        ) from None
    with about_file(weights.with_suffix(".json")):
        name = record.get("model")
        if not isinstance(name, str):
            raise ValueError(f"'model' must be a model registry name; received {name!r}")
        options = _config_options(MODELS[name].config_cls, record.get("config"))
        # Build on the meta device first and compare shapes with the file: a wrong width in
        # model.json must not try to allocate terabytes (or fail deep inside torch).
        try:
            with torch.device("meta"):
                skeleton = build_model(name, **options)
        except (RuntimeError, OverflowError):  # a model that loads data as it is built (a
            skeleton = None  # frozen teacher) cannot live on the meta device: no pre-check
        if skeleton is not None:
            for key, tensor in skeleton.state_dict().items():
                if key in stored and tuple(tensor.shape) != stored[key]:
                    raise ValueError(
                        f"the model it configures does not match {weights.name}: tensor "
                        f"{key!r} is {list(stored[key])} in the file and "
                        f"{list(tensor.shape)} in the model"
                    )
            del skeleton
        try:
            model = build_model(name, **options)
        except (RuntimeError, OverflowError) as exc:  # e.g. a width too large to allocate
            raise ValueError(f"cannot build model {name!r} as configured: {exc}") from None
    try:
        st_load_model(model, str(weights), strict=True, device="cpu")
    except Exception as exc:  # missing or unexpected tensors
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ValueError(
            f"{str(weights)!r} does not match model {name!r} as its {MODEL_JSON_NAME} "
            f"configures it: {detail}"
        ) from None
    if device is not None:
        model.to(device)
    return model.eval()


def _config_options(config_cls: type, config: Any) -> dict[str, Any]:
    """The keyword options of ``config_cls`` from its JSON form (``Model.config_dict()``
    written to ``model.json``): JSON has no tuples, so tuple fields get theirs back."""
    if not isinstance(config, Mapping):
        raise ValueError(f"the model record's config must be a JSON object; received {config!r}")
    hints = typing.get_type_hints(config_cls)
    tuples = {f.name for f in dataclasses.fields(config_cls) if _is_tuple(hints.get(f.name))}
    return {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in config.items()}


def _is_tuple(tp: Any) -> bool:
    if typing.get_origin(tp) is tuple or tp is tuple:
        return True
    return any(_is_tuple(a) for a in typing.get_args(tp) if typing.get_origin(tp) is not tuple)


def disentkit_model_teacher(path: str | os.PathLike[str]) -> ModelTeacher:
    """A teacher from a trained disentkit run: its encoder's continuous output.

    Loads ``path`` (a run directory or ``model.safetensors``) with :func:`load_model` and
    wraps it in :class:`~disentkit.nn.teachers.ModelTeacher`, whose features are
    ``encode(x).mean`` (the posterior mean of a VAE, the pre-quantization encoder output of
    a quantized model) or ``encode(x).z``, flattened to ``(B, D_t)``. Images are resized
    (bilinear) to the saved model's ``image_shape`` and converted to its channel count.

    Use it inside a no-argument factory named by a model's ``teacher`` option::

        # my_teachers.py
        from disentkit.models import disentkit_model_teacher

        def shapes3d_vae():
            return disentkit_model_teacher("runs/beta_vae-shapes3d-seed0")

    Args:
        path: the saved model.
    """
    return ModelTeacher(load_model(path))
