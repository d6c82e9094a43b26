"""Files of a run directory: atomic writes, the resume checkpoint, and shareable weights.

Two kinds of saved model, for two audiences:

- ``checkpoints/last.ckpt``: the trainer's full state (model, optimisers, mixed-precision
  scaler, RNG states, step) for resuming a run **on the machine that wrote it**. Written
  with ``torch.save`` and read with ``torch.load(weights_only=True)`` (tensors, numbers,
  strings and containers only; no arbitrary objects are unpickled).
- ``model.safetensors`` + ``model.json``: the weights to share and the recipe to rebuild
  the model (registry name, model config, disentkit version, data set, step).
  :func:`load_model` reads them with safetensors and JSON only, never pickle. The same JSON
  is embedded in the safetensors header (metadata key ``"disentkit"``), so a lone
  ``.safetensors`` file is enough.

Every file is written atomically: to a temporary file in the same folder, flushed to disk,
then moved over the target with ``os.replace``. A crash (or ``kill -9``) mid-write leaves
the previous file intact and at most a stray ``.<name>.*.tmp`` file, which
:func:`remove_stale_temporaries` deletes.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from disentkit.models import Model

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_FORMAT",
    "atomic_write",
    "load_checkpoint",
    "load_model",
    "read_model_info",
    "remove_stale_temporaries",
    "save_checkpoint",
    "save_model",
    "write_json",
]

CHECKPOINT_FORMAT = "disentkit-checkpoint"
MODEL_FORMAT = "disentkit-model"
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
MODEL_JSON_NAME = "model.json"
_METADATA_KEY = "disentkit"
_TMP_SUFFIX = ".tmp"


# --------------------------------------------------------------------------- atomic writes


def _fsync_dir(directory: Path) -> None:
    with suppress(OSError, AttributeError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Create or replace ``path`` atomically.

    ``write(tmp)`` writes the content to a temporary file ``tmp`` in the same folder; the
    file is then flushed to disk and renamed over ``path`` (``os.replace``). If ``write``
    raises (or the process dies), ``path`` keeps its previous content.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "x.txt"
        >>> _ = atomic_write(target, lambda tmp: tmp.write_text("one"))
        >>> def broken(tmp):
        ...     tmp.write_text("half")
        ...     raise OSError("disk full")
        >>> atomic_write(target, broken)
        Traceback (most recent call last):
        ...
        OSError: disk full
        >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
        ('one', ['x.txt'])
    """
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files left in ``directory`` by writes that were killed."""
    removed = []
    folder = Path(directory)
    if folder.is_dir():
        for p in folder.glob(f".*{_TMP_SUFFIX}"):
            with suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy / torch arrays, scalars
        return _jsonable(value.tolist())
    return value


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON, atomically (non-finite floats become null)."""
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write the trainer state ``state`` to ``path`` atomically (``torch.save``).

    ``state`` must hold only what ``torch.load(weights_only=True)`` accepts: tensors,
    numbers, strings, ``None`` and lists/tuples/dicts of them.
    """
    import torch

    payload = {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a disentkit checkpoint or cannot be read.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(p)!r}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError (truncated zip), ...
        raise ValueError(f"cannot read checkpoint {str(p)!r}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(p)!r} is not a disentkit checkpoint")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{str(p)!r} was written by a newer disentkit (checkpoint format "
            f"{state['format_version']}; this version reads up to {FORMAT_VERSION})"
        )
    return state


# --------------------------------------------------------------------------- shareable weights


def _weights_path(path: Path) -> Path:
    return path / WEIGHTS_NAME if path.is_dir() else path


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

    from disentkit import __version__

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
    record = _jsonable(record)
    metadata = {_METADATA_KEY: json.dumps(record, allow_nan=False)}
    atomic_write(weights, lambda tmp: st_save_model(model, str(tmp), metadata=dict(metadata)))
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
        try:
            record = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read {str(json_path)!r}: {exc}") from None
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
    from safetensors.torch import load_model as st_load_model

    from disentkit.models import MODELS, build_model
    from disentkit.train.config import coerce_options

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
    name = record["model"]
    info = MODELS[name]
    options = coerce_options(info.config_cls, record.get("config", {}), where=f"model {name!r}")
    model = build_model(name, **options)
    try:
        st_load_model(model, str(weights), strict=True, device="cpu")
    except RuntimeError as exc:
        raise ValueError(f"{str(weights)!r} does not match model {name!r}: {exc}") from None
    if device is not None:
        model.to(device)
    return model.eval()
