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

import errno
import json
import os
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from disentkit._atomic import (  # noqa: F401  (re-exported)
    _fsync_dir,
    _jsonable,
    atomic_write,
    remove_stale_temporaries,
    write_json,
)
from disentkit._validation import about_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from disentkit.models import Model

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_FORMAT",
    "CheckpointWriteError",
    "atomic_write",
    "load_checkpoint",
    "load_latest_checkpoint",
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


# --------------------------------------------------------------------------- atomic writes


# --------------------------------------------------------------------------- checkpoints


PREVIOUS_NAME = "previous.ckpt"


class CheckpointWriteError(ValueError):
    """A checkpoint could not be written (disk full, I/O error); the previous one is intact."""


def previous_checkpoint(path: str | os.PathLike[str]) -> Path:
    """Where :func:`save_checkpoint` keeps the checkpoint that ``path`` replaced."""
    return Path(path).with_name(PREVIOUS_NAME)


def _write_file(tmp: Path, data: bytes) -> None:
    with open(tmp, "wb") as fh:
        fh.write(data)


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write the trainer state ``state`` to ``path`` so that a good checkpoint always exists.

    The state is serialised (``torch.save``) and read back in memory first, so only a
    verified checkpoint reaches the disk. It is then written to a temporary file, flushed,
    and renamed over ``path``; just before that rename, the checkpoint being replaced is
    kept as ``previous.ckpt`` beside it (a hard link, or a copy where links are not
    supported). A crash, a full disk or an interrupted copy therefore never leaves the run
    without a readable checkpoint: :func:`load_latest_checkpoint` falls back to the
    previous one.

    ``state`` must hold only what ``torch.load(weights_only=True)`` accepts: tensors,
    numbers, strings, ``None`` and lists/tuples/dicts of them.

    Raises:
        CheckpointWriteError: (a ``ValueError``) the disk is full or the write failed; the
            message names the file and says which checkpoint is intact.
    """
    import io
    import shutil

    import torch

    target = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, **state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    _check_state(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), target)

    def write(tmp: Path) -> None:
        _write_file(tmp, data)
        if tmp.stat().st_size != len(data):
            raise OSError(f"short write: {tmp.stat().st_size} of {len(data)} bytes")
        if target.is_file():  # keep the last good checkpoint until the new one is in place
            previous = previous_checkpoint(target)
            staged = previous.with_name(f".{previous.name}.link.tmp")
            with suppress(FileNotFoundError):
                staged.unlink()
            try:
                os.link(target, staged)
            except OSError:
                shutil.copyfile(target, staged)
            os.replace(staged, previous)

    try:
        return atomic_write(target, write)
    except OSError as exc:
        kept = [p.name for p in (target, previous_checkpoint(target)) if p.is_file()]
        intact = (f"the previous checkpoint ({', '.join(kept)}) is intact" if kept
                  else "no earlier checkpoint exists")
        reason = "no space left on device" if exc.errno == errno.ENOSPC else str(exc)
        raise CheckpointWriteError(
            f"cannot write checkpoint {str(target)!r}: {reason}; {intact}. Free space and "
            "continue the run with --resume"
        ) from None


def _check_state(state: Any, p: Path) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(p)!r} is not a disentkit checkpoint")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{str(p)!r} was written by a newer disentkit (checkpoint format "
            f"{state['format_version']}; this version reads up to {FORMAT_VERSION})"
        )
    return state


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a disentkit checkpoint or cannot be read (truncated,
            corrupt).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(p)!r}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError (truncated zip), ...
        raise ValueError(f"cannot read checkpoint {str(p)!r}: {exc}") from None
    return _check_state(state, p)


def load_latest_checkpoint(
    path: str | os.PathLike[str], map_location: Any = "cpu"
) -> tuple[dict[str, Any], Path, list[str]]:
    """The newest readable checkpoint: ``path``, else the ``previous.ckpt`` beside it.

    Returns:
        ``(state, path_read, problems)``: ``problems`` holds one line per checkpoint that
        could not be read (empty when ``path`` itself was read), for the caller to show.

    Raises:
        FileNotFoundError: neither file exists.
        ValueError: no readable checkpoint; the message lists why each was refused.
    """
    target = Path(path)
    problems: list[str] = []
    candidates = [target, previous_checkpoint(target)]
    if not any(c.is_file() for c in candidates):
        raise FileNotFoundError(f"no checkpoint at {str(target)!r}")
    for candidate in candidates:
        if not candidate.is_file():
            continue
        try:
            return load_checkpoint(candidate, map_location), candidate, problems
        except ValueError as exc:
            problems.append(str(exc))
    raise ValueError("no readable checkpoint: " + "; ".join(problems))


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
    import torch
    from safetensors import safe_open
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
        info = MODELS[name]
        options = coerce_options(info.config_cls, record.get("config", {}),
                                 where=f"model {name!r}")
        # Check the configured shapes against the file before allocating anything: a wrong
        # width in model.json must not try to allocate terabytes.
        try:
            with torch.device("meta"):
                skeleton = build_model(name, **options)
        except RuntimeError as exc:  # e.g. a width too large to address
            raise ValueError(f"cannot build model {name!r} as configured: {exc}") from None
        for key, tensor in skeleton.state_dict().items():
            if key in stored and tuple(tensor.shape) != stored[key]:
                raise ValueError(
                    f"the model it configures does not match {weights.name}: tensor {key!r} "
                    f"is {list(stored[key])} in the file and {list(tensor.shape)} in the model"
                )
        del skeleton
        model = build_model(name, **options)
    try:
        st_load_model(model, str(weights), strict=True, device="cpu")
    except Exception as exc:  # missing or unexpected tensors
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ValueError(
            f"{str(weights)!r} does not match model {name!r} as its model.json configures it: "
            f"{detail}"
        ) from None
    if device is not None:
        model.to(device)
    return model.eval()
