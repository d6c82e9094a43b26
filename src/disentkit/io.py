"""Reading latents and factors from array files, safely.

Supported formats, chosen by file extension (case-insensitive):

- ``.npy``: one array. Read with ``allow_pickle=False``: object arrays are refused.
- ``.npz``: several named arrays (``numpy.savez``); same rule, never unpickled.
- ``.safetensors``: several named tensors, read with ``safetensors.numpy.load_file``.
- ``.csv`` / ``.tsv`` / ``.txt``: one numeric table, comma- or whitespace-separated, with an
  optional header row (detected: a first line that does not parse as numbers), ``#``
  comments allowed. Read with numpy only.

Which array of an ``.npz`` / ``.safetensors`` file to use is given by a key, or inferred:
a file holding a single array gives that array; otherwise the conventional names
``latents``/``z``/``codes``/``representation`` (latents) and
``factors``/``labels``/``y``/``sources`` (factors) are recognised. When both arrays come
from the same file, the factors' file may be omitted.

Every problem with an input file raises :class:`InputError` (a ``ValueError``) whose message
names the file; a missing file raises :class:`InputFileNotFoundError`, which is also a
``FileNotFoundError``. Nothing is ever unpickled: pickle can run arbitrary code.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from disentkit._validation import as_columns

__all__ = [
    "FACTORS_NAMES",
    "LATENTS_NAMES",
    "SUPPORTED_EXTENSIONS",
    "ArrayPair",
    "InputError",
    "InputFileNotFoundError",
    "label_encode",
    "load_array",
    "load_pair",
    "read_pair",
]

#: Extensions :func:`load_array` reads, by format.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".npy": "npy",
    ".npz": "npz",
    ".safetensors": "safetensors",
    ".csv": "text",
    ".tsv": "text",
    ".txt": "text",
}
#: Array names recognised as the latents in a multi-array file (case-insensitive).
LATENTS_NAMES: tuple[str, ...] = ("latents", "z", "codes", "representation")
#: Array names recognised as the factors in a multi-array file (case-insensitive).
FACTORS_NAMES: tuple[str, ...] = ("factors", "labels", "y", "sources")

_ROLE_NAMES = {"latents": LATENTS_NAMES, "factors": FACTORS_NAMES}
_PICKLE_EXTENSIONS = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib")
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NO_PICKLE = (
    "disentkit never unpickles input files, because unpickling can run arbitrary code; "
    "save a numeric array instead, e.g. numpy.save(path, array.astype(numpy.float32))"
)


class InputError(ValueError):
    """An input file that cannot be read as the array expected; the message names the file."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """An input file that does not exist."""


@dataclass(frozen=True)
class ArrayPair:
    """Latents and factors read from files, with the array names actually used."""

    latents: np.ndarray
    factors: np.ndarray
    latents_key: str | None
    factors_key: str | None
    label_encoding: dict[int, list[str]] = field(default_factory=dict)  # column → labels


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in SUPPORTED_EXTENSIONS:
        return SUPPORTED_EXTENSIONS[suffix]
    supported = ", ".join(SUPPORTED_EXTENSIONS)
    hint = ""
    if suffix in _PICKLE_EXTENSIONS:
        hint = f"; {suffix} files are pickle-based and are not read: {_NO_PICKLE}"
    raise InputError(
        f"{path}: unsupported file type {suffix or '(no extension)'!r}; "
        f"supported: {supported}{hint}"
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputFileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected an array file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: file is not readable (permission denied)")


def _head(path: Path, n: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def _check_numeric(arr: np.ndarray, path: Path, key: str | None, *,
                   labels: bool = False) -> np.ndarray:
    where = f"{path}" if key is None else f"{path} (array {key!r})"
    if labels and arr.dtype.kind in "US":  # text labels, encoded by label_encode
        return arr
    if arr.dtype.names is not None:
        raise InputError(
            f"{where}: holds a structured array with fields {list(arr.dtype.names)}; "
            "expected a plain numeric array"
        )
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        hint = (" (factors given as text labels: label-encode them with --label-encode, or "
                "label_encode=True)") if arr.dtype.kind in "US" else ""
        raise InputError(
            f"{where}: holds non-numeric data (dtype {arr.dtype}); expected numbers{hint}")
    return arr


def _pickled_array_error(path: Path, key: str | None) -> InputError:
    where = f"{path}" if key is None else f"{path} (array {key!r})"
    return InputError(f"{where}: holds an object array, which is stored as a pickle; {_NO_PICKLE}")


def _read_npy(path: Path) -> np.ndarray:
    head = _head(path, len(_NPY_MAGIC))
    if head != _NPY_MAGIC:
        if head[:1] == b"\x80":
            raise InputError(f"{path}: is a pickle, not an .npy array; {_NO_PICKLE}")
        raise InputError(f"{path}: not a valid .npy file (missing the NumPy header)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise _pickled_array_error(path, None) from None
        raise InputError(f"{path}: corrupt or truncated .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: corrupt or truncated .npy file ({exc})") from None


def _all_numbers(fields: Sequence[str]) -> bool:
    try:
        for field in fields:
            float(field)
    except ValueError:
        return False
    return True


def _read_text(path: Path, *, labels: bool = False) -> np.ndarray:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (not valid UTF-8)") from None
    first = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
        None,
    )
    if first is None:
        raise InputError(f"{path}: empty file, expected a numeric table")
    delimiter = "," if "," in lines[first] else None  # None: any whitespace
    fields = [f.strip().strip("\"'") for f in lines[first].split(delimiter)]
    skiprows = first if _all_numbers(fields) else first + 1  # else: a header row
    if labels:  # a header row is one whose fields are not all numbers: keep the first line
        skiprows = first + 1 if _is_header(fields, lines[first + 1:]) else first
    if not any(line.strip() and not line.lstrip().startswith("#") for line in lines[skiprows:]):
        raise InputError(f"{path}: holds a header but no data rows")
    try:
        arr = np.loadtxt(
            path,
            delimiter=delimiter,
            skiprows=skiprows,
            ndmin=2,
            dtype=str if labels else np.float64,
            comments="#",
            encoding="utf-8-sig",
        )
    except ValueError as exc:
        hint = "" if labels else (" (text labels among the factors: --label-encode, or "
                                  "label_encode=True)")
        raise InputError(
            f"{path}: could not read a numeric table ({exc}); expected numbers separated by "
            f"commas or whitespace, with at most one header row{hint}"
        ) from None
    if labels:
        arr = np.char.strip(np.char.strip(arr), "\"'")
    return arr


def _is_header(fields: Sequence[str], rest: Sequence[str]) -> bool:
    """With text labels a header cannot be told by its numbers alone: the first line is a
    header when it is not all numbers while some later line has a number where it has text."""
    if _all_numbers(fields):
        return False
    for line in rest:
        if line.strip() and not line.lstrip().startswith("#"):
            sep = "," if "," in line else None
            values = [f.strip().strip("\"'") for f in line.split(sep)]
            return any(_all_numbers([v]) and not _all_numbers([h])
                       for v, h in zip(values, fields, strict=False))
    return False


def label_encode(values: np.ndarray) -> tuple[np.ndarray, dict[int, list[str]]]:
    """Label-encode the text columns of a table: each distinct label becomes its rank.

    A column whose values all read as numbers is kept as numbers; any other column's labels
    are sorted (as text) and replaced by their positions ``0 .. k − 1``.

    Args:
        values: ``(n_samples, n_columns)`` (or 1-D) array of numbers or text.

    Returns:
        ``(codes, mapping)``: float64 ``(n_samples, n_columns)`` and, for each encoded
        column, its labels in code order (``mapping[j][code] == label``).

    Example:
        >>> codes, mapping = label_encode(np.array([["red", "1"], ["blue", "2"], ["red", "2"]]))
        >>> codes.tolist(), mapping
        ([[1.0, 1.0], [0.0, 2.0], [1.0, 2.0]], {0: ['blue', 'red']})
    """
    arr = np.asarray(values)
    arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr
    if arr.dtype.kind not in "USO":
        return arr.astype(np.float64), {}
    text = arr.astype(str)
    codes = np.empty(text.shape, dtype=np.float64)
    mapping: dict[int, list[str]] = {}
    for j in range(text.shape[1]):  # one np.unique per column: columns are few
        column = text[:, j]
        try:
            codes[:, j] = column.astype(np.float64)
        except ValueError:
            labels, inverse = np.unique(column, return_inverse=True)
            codes[:, j] = inverse
            mapping[j] = labels.tolist()
    return codes, mapping


def _open_container(path: Path, fmt: str) -> tuple[list[str], object]:
    """Names of the arrays in an ``.npz``/``.safetensors`` file and a handle to read them."""
    if fmt == "npz":
        if _head(path, 4) not in _ZIP_MAGICS:
            if _head(path, 6) == _NPY_MAGIC:
                raise InputError(f"{path}: is an .npy file named .npz; rename it to .npy")
            raise InputError(f"{path}: not a valid .npz file (not a zip archive)")
        try:
            npz = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: corrupt .npz file ({exc})") from None
        return list(npz.files), npz
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: corrupt or unsupported .safetensors file ({exc})") from None
    return list(tensors), tensors


def _get(handle: object, path: Path, key: str, *, labels: bool = False) -> np.ndarray:
    try:
        arr = handle[key]  # type: ignore[index]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise _pickled_array_error(path, key) from None
        raise InputError(f"{path}: could not read array {key!r} ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"{path}: could not read array {key!r} ({exc})") from None
    return _check_numeric(np.asarray(arr), path, key, labels=labels)


def _close(handle: object) -> None:
    if isinstance(handle, np.lib.npyio.NpzFile):
        handle.close()


def _check_key_present(key: str, names: Sequence[str], path: Path) -> None:
    if key not in names:
        raise InputError(f"{path}: has no array {key!r}; arrays present: {names}")


def _infer(names: Sequence[str], role: str) -> list[str]:
    """Names that conventionally hold ``role`` ("latents" or "factors")."""
    return [n for n in names if n.lower() in _ROLE_NAMES[role]]


def _flag(role: str) -> str:
    return f"{role}_key= (command line: --{role}-key)"


def _pick(names: Sequence[str], path: Path, role: str, key: str | None) -> str:
    """Choose the array holding ``role`` in a file that holds ``names``."""
    if key is not None:
        _check_key_present(key, names, path)
        return key
    if not names:
        raise InputError(f"{path}: holds no arrays")
    candidates = _infer(names, role)
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise InputError(
            f"{path}: several arrays could hold the {role}: {candidates}; "
            f"choose one with {_flag(role)}"
        )
    if len(names) == 1:
        return names[0]
    raise InputError(
        f"{path}: cannot tell which array holds the {role}; arrays present: {list(names)}, "
        f"none named {' / '.join(_ROLE_NAMES[role])}; choose one with {_flag(role)}"
    )


def _pick_both(
    names: Sequence[str], path: Path, latents_key: str | None, factors_key: str | None
) -> tuple[str, str]:
    """Choose the latents and the factors arrays inside one file."""
    if len(names) < 2 and not (latents_key is not None and latents_key == factors_key):
        raise InputError(
            f"{path}: holds {len(names)} array(s) {list(names)}, but latents and factors are "
            "both read from it when FACTORS is omitted; give the factors file as well"
        )
    chosen: dict[str, str | None] = {}
    for role, key in (("latents", latents_key), ("factors", factors_key)):
        if key is not None:
            _check_key_present(key, names, path)
            chosen[role] = key
            continue
        candidates = _infer(names, role)
        if len(candidates) > 1:
            raise InputError(
                f"{path}: several arrays could hold the {role}: {candidates}; "
                f"choose one with {_flag(role)}"
            )
        chosen[role] = candidates[0] if candidates else None
    lat, fac = chosen["latents"], chosen["factors"]
    if (lat is None) != (fac is None) and len(names) == 2:
        # One role is known and exactly one other array remains: it holds the other role.
        other = next(n for n in names if n != (lat or fac))
        lat, fac = (other, fac) if lat is None else (lat, other)
    for role, name in (("latents", lat), ("factors", fac)):
        if name is None:
            raise InputError(
                f"{path}: cannot tell which array holds the {role}; arrays present: "
                f"{list(names)}, none named {' / '.join(_ROLE_NAMES[role])}; "
                f"choose one with {_flag(role)}"
            )
    assert lat is not None and fac is not None
    return lat, fac


def _read(path: Path, key: str | None, role: str | None, *,
          labels: bool = False) -> tuple[np.ndarray, str | None]:
    """Read one array; ``role`` ("latents"/"factors") enables conventional-name inference;
    ``labels`` accepts text (for :func:`label_encode`)."""
    _check_file(path)
    fmt = _format_of(path)
    if fmt in ("npy", "text"):
        if key is not None:
            raise InputError(
                f"{path}: a {path.suffix} file holds one array, so key {key!r} does not apply; "
                "keys select arrays in .npz and .safetensors files"
            )
        arr = _read_npy(path) if fmt == "npy" else _read_text(path, labels=labels)
        return _check_numeric(arr, path, None, labels=labels), None
    names, handle = _open_container(path, fmt)
    try:
        if role is None:
            if key is not None:
                _check_key_present(key, names, path)
            elif len(names) == 1:
                key = names[0]
            elif not names:
                raise InputError(f"{path}: holds no arrays")
            else:
                raise InputError(
                    f"{path}: holds several arrays {names}; choose one with key="
                )
        else:
            key = _pick(names, path, role, key)
        return _get(handle, path, key, labels=labels), key
    finally:
        _close(handle)


def load_array(path: str | os.PathLike[str], key: str | None = None) -> np.ndarray:
    """Read one numeric array from a ``.npy``, ``.npz``, ``.safetensors`` or CSV file.

    Args:
        path: the file; its extension picks the format (see the module docstring).
        key: the array's name in an ``.npz`` / ``.safetensors`` file; may be omitted when
            the file holds a single array. Not accepted for ``.npy`` and CSV files.

    Returns:
        The array as stored (CSV tables as float64 ``(n_rows, n_columns)``).

    Raises:
        InputFileNotFoundError: the file does not exist.
        InputError: unsupported extension, unreadable or corrupt file, pickled (object)
            data, non-numeric data, a missing key or an ambiguous choice of array.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "z.npz"
        >>> np.savez(path, z=np.zeros((4, 2)))
        >>> load_array(path).shape
        (4, 2)
    """
    return _read(Path(path), key, None)[0]


def read_pair(
    latents_path: str | os.PathLike[str],
    factors_path: str | os.PathLike[str] | None = None,
    *,
    latents_key: str | None = None,
    factors_key: str | None = None,
    label_encode_factors: bool = False,
) -> ArrayPair:
    """:func:`load_pair` with the array names it used and the label encoding it applied
    (what ``disentkit score`` records in its JSON); same arguments and errors."""
    lpath = Path(latents_path)
    if factors_path is None:
        _check_file(lpath)
        fmt = _format_of(lpath)
        if fmt not in ("npz", "safetensors"):
            raise InputError(
                f"{lpath}: a {lpath.suffix} file holds one array, so the factors must be given "
                "as a second file (FACTORS can be omitted only for an .npz or .safetensors "
                "file holding both arrays)"
            )
        names, handle = _open_container(lpath, fmt)
        try:
            lkey, fkey = _pick_both(names, lpath, latents_key, factors_key)
            latents = _get(handle, lpath, lkey)
            factors = _get(handle, lpath, fkey, labels=label_encode_factors)
        finally:
            _close(handle)
        fpath = lpath
    else:
        fpath = Path(factors_path)
        latents, lkey = _read(lpath, latents_key, "latents")
        factors, fkey = _read(fpath, factors_key, "factors", labels=label_encode_factors)
    encoding: dict[int, list[str]] = {}
    if label_encode_factors:
        factors, encoding = label_encode(factors)
    latents, factors = as_columns(latents), as_columns(factors)
    if latents.shape[0] != factors.shape[0]:
        lname = lpath if lkey is None else f"{lpath}[{lkey!r}]"
        fname = fpath if fkey is None else f"{fpath}[{fkey!r}]"
        raise InputError(
            "latents and factors must have one row per sample, the same number of rows; "
            f"received latents {latents.shape} from {lname} and factors {factors.shape} "
            f"from {fname}"
        )
    return ArrayPair(latents=latents, factors=factors, latents_key=lkey, factors_key=fkey,
                 label_encoding=encoding)


def load_pair(
    latents_path: str | os.PathLike[str],
    factors_path: str | os.PathLike[str] | None = None,
    *,
    latents_key: str | None = None,
    factors_key: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read latents and factors for scoring.

    The arrays are returned as stored except that a 1-D array becomes one column
    ``(n_samples, 1)``; :func:`disentkit.evaluate` validates them further (finite values,
    integer factors).

    Args:
        latents_path: file holding the latents ``(n_samples, n_latents)``.
        factors_path: file holding the factors ``(n_samples, n_factors)``; omit it when
            ``latents_path`` is an ``.npz``/``.safetensors`` file holding both arrays.
        latents_key: name of the latents array in an ``.npz``/``.safetensors`` file;
            inferred when the file holds one array or one conventionally named one
            (``latents``, ``z``, ``codes``, ``representation``).
        factors_key: same for the factors (``factors``, ``labels``, ``y``, ``sources``).
            In a file holding exactly two arrays, naming one role is enough.

    Returns:
        ``(latents, factors)``.

    Raises:
        InputFileNotFoundError: a file does not exist.
        InputError: any problem reading the files, choosing the arrays, or rows that differ
            in number between latents and factors.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.npz"
        >>> np.savez(path, latents=np.zeros((6, 3)), factors=np.zeros((6, 2), dtype=int))
        >>> [a.shape for a in load_pair(path)]
        [(6, 3), (6, 2)]
    """
    pair = read_pair(
        latents_path, factors_path, latents_key=latents_key, factors_key=factors_key
    )
    return pair.latents, pair.factors
