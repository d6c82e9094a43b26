"""``disentkit data``: list, inspect, picture, download and prepare the datasets.

Commands (all registry-driven: every dataset in :data:`disentkit.data.DATASETS` appears):

- ``disentkit data list``: name, kind, factors with sizes, number of images, and for
  official datasets whether their files (and prepared cache) are present.
- ``disentkit data info NAME``: factors with sizes and values, number of images, image
  shape and source (with the file's checksum). For an official dataset whose files are
  missing, the registry's metadata and where to put the files.
- ``disentkit data show NAME``: a factor grid picture (one row per factor), written to
  ``NAME.png`` in the current folder unless ``--out`` says otherwise.
- ``disentkit data download NAME`` / ``disentkit data prepare NAME``: fetch an official
  release (resumable, retried, checksum-verified) / convert it once to a memory-mapped
  cache, with a progress bar. ``disentkit data download --all`` fetches every official
  release that can be fetched and says how to get the others.

``--data-dir`` sets the data root; without it, ``$DISENTKIT_DATA``, else
``~/.cache/disentkit``. Bad input and missing files end with one red paragraph on stderr and
exit code 2 (network and other environment failures: exit code 1); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from disentkit._atomic import jsonable
from disentkit._console import error, stderr, stdout
from disentkit.cli._common import DEBUG_HINT

__all__ = ["data_app", "parse_dataset_options"]

data_app = typer.Typer(
    name="data",
    help="List, inspect, picture, download and prepare the factor datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

#: Stages reported by the official module's ``progress(stage, done, total)``, and their units.
_STAGE_LABELS = {"download": "downloading", "hash": "checking sha256", "convert": "converting"}
_BYTE_STAGES = ("download", "hash")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data root holding <NAME>/ folders. Default: $DISENTKIT_DATA, else "
        "~/.cache/disentkit.",
        show_default=False,
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
Name = Annotated[str, typer.Argument(help="Dataset name (see `disentkit data list`).")]
OptionList = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        "-o",
        metavar="NAME=VALUE",
        help="Dataset option NAME=VALUE (value read as JSON when it parses), e.g. "
        "-o image_size=32. Repeatable.",
        show_default=False,
    ),
]


# --------------------------------------------------------------------------- helpers


@contextmanager
def _user_errors(debug: bool) -> Iterator[None]:
    """Bad input and missing files → one red paragraph, exit 2; network/environment → exit 1."""
    try:
        yield
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        if debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        hint = "" if isinstance(exc, FileNotFoundError | KeyError) else DEBUG_HINT
        error(str(message) or type(exc).__name__, hint)
        raise typer.Exit(2) from None
    except (OSError, RuntimeError) as exc:  # offline, disk full, manual-only releases
        if debug:
            raise
        error(str(exc) or type(exc).__name__)
        raise typer.Exit(1) from None


def parse_dataset_options(items: Sequence[str] | None) -> dict[str, Any]:
    """Parse ``--option NAME=VALUE`` items into keyword options of ``get_dataset``.

    Values are read as JSON when they parse (``32``, ``false``, ``"x"``) and kept as
    strings otherwise.

    Example:
        >>> parse_dataset_options(["image_size=32", "cache_dir=false", "split=train"])
        {'image_size': 32, 'cache_dir': False, 'split': 'train'}
    """
    out: dict[str, Any] = {}
    for item in items or ():
        name, equals, raw = item.partition("=")
        name = name.strip()
        if not equals or not name.isidentifier():
            raise ValueError(
                f"--option expects NAME=VALUE, e.g. --option image_size=32; received {item!r}"
            )
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


def _datasets() -> Any:
    """The dataset registry, after importing every module that registers datasets."""
    from disentkit.data import _base

    _official_module()  # registers the official loaders where disentkit.data does not yet
    return _base.DATASETS


def _root(data_dir: Path | None) -> Path:
    from disentkit.data import data_root

    return data_root(data_dir)


def _official_module() -> ModuleType | None:
    try:
        return importlib.import_module("disentkit.data.official")
    except ImportError:
        return None


def _files_state(info: Any, data_dir: Path | None) -> str:
    """``"-"`` (procedural), ``"prepared"``, ``"present"`` or ``"missing"``."""
    if info.kind != "official":
        return "-"
    official = _official_module()
    status = getattr(official, "status", None)
    if status is not None:
        try:
            s = status(info.name, data_dir)
        except (ValueError, KeyError, OSError):
            s = None
        if isinstance(s, Mapping):
            if s.get("prepared"):
                return "prepared"
            return "present" if s.get("present") else "missing"
    base = _root(data_dir) / info.name
    files = tuple(info.files)
    if files and all((base / f.rstrip("/")).exists() for f in files):
        return "present"
    return "missing"


def _factors_text(names: Sequence[str], sizes: Sequence[int]) -> str:
    return " × ".join(f"{n} {s}" for n, s in zip(names, sizes, strict=True))


def _short_values(values: Sequence[Any], limit: int = 8) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    vals = list(values)
    if len(vals) <= limit:
        return ", ".join(fmt(v) for v in vals)
    return ", ".join(fmt(v) for v in vals[:3]) + ", …, " + ", ".join(fmt(v) for v in vals[-2:])


def _registry_meta(info: Any, data_dir: Path | None) -> dict[str, Any]:
    base = _root(data_dir) / info.name
    return {
        "name": info.name,
        "kind": info.kind,
        "description": info.description,
        "n_images": math.prod(info.factor_sizes),
        "factors": {n: {"size": s} for n, s in zip(info.factor_names, info.factor_sizes,
                                                   strict=True)},
        "files": {f: str(base / f.rstrip("/")) for f in info.files},
        "urls": dict(info.urls),
        "sha256": {k: list(v) for k, v in info.sha256.items()},
        "licence": info.licence,
        "procedural_alternative": info.procedural_alternative,
        "advice": _fetch_advice(info.name, data_dir),
    }


def _fetch_advice(name: str, data_dir: Path | None) -> str:
    """The official module's one sentence on how to get ``name``'s files."""
    advice = getattr(_official_module(), "fetch_advice", None)
    if advice is not None:
        try:
            return str(advice(name, data_dir))
        except (KeyError, ValueError):  # registered elsewhere, unknown to the official module
            pass
    return f"disentkit data download {name} (or place the files by hand)"


# --------------------------------------------------------------------------- commands


@data_app.command("list")
def list_datasets(
    data_dir: DataDir = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the registry as JSON instead of a table.")
    ] = False,
) -> None:
    """List the registered datasets: kind, factors and sizes, images, files present."""
    datasets = _datasets()
    entries = [
        {
            "name": name,
            "kind": info.kind,
            "description": info.description,
            "factor_names": list(info.factor_names),
            "factor_sizes": list(info.factor_sizes),
            "n_images": math.prod(info.factor_sizes),
            "files": _files_state(info, data_dir),
        }
        for name, info in list(datasets.items())
    ]
    if as_json:
        typer.echo(json.dumps(jsonable(entries), indent=2))
        return
    table = Table(
        title=f"{len(entries)} registered dataset(s)",
        caption=Text(
            f"files: official files under {_root(data_dir)}/<name>/ (prepared: converted "
            f"cache ready; - : procedural, rendered on the fly)"
        ),
    )
    table.add_column("dataset", style="bold", overflow="fold")
    table.add_column("kind")
    table.add_column("factors × sizes", overflow="fold")
    table.add_column("images", justify="right", no_wrap=True)
    table.add_column("files", no_wrap=True)
    styles = {"prepared": "green", "present": "green", "missing": "yellow", "-": "dim"}
    for e in entries:
        table.add_row(
            Text(e["name"]),
            Text(e["kind"]),
            Text(_factors_text(e["factor_names"], e["factor_sizes"])),
            Text(f"{e['n_images']:,}"),
            Text(e["files"], style=styles.get(e["files"], "")),
        )
    stdout().print(table)


@data_app.command()
def info(
    name: Name,
    data_dir: DataDir = None,
    option: OptionList = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    debug: Debug = False,
) -> None:
    """Factors with sizes and values, number of images, image shape and source of NAME."""
    out, err = stdout(), stderr()
    with _user_errors(debug):
        from disentkit.data import get_dataset

        entry = _datasets()[name]
        options = parse_dataset_options(option)
        try:
            ds = get_dataset(name, data_dir=data_dir, **options)
        except FileNotFoundError as exc:
            if entry.kind != "official":
                raise
            meta = _registry_meta(entry, data_dir)
            meta["files_present"] = False
            meta["message"] = str(exc)
            if as_json:
                typer.echo(json.dumps(jsonable(meta), indent=2))
                return
            _print_registry_meta(out, meta)
            err.print(Text.assemble(("note: ", "bold yellow"), (str(exc), "yellow")),
                      soft_wrap=True)
            return
        meta = ds.info()
        meta = {
            "name": meta.get("name", name),
            "kind": entry.kind,
            "description": entry.description,
            **{k: v for k, v in meta.items() if k != "name"},
            "licence": entry.licence,
        }
        if entry.kind == "official":
            meta["procedural_alternative"] = entry.procedural_alternative
    if as_json:
        typer.echo(json.dumps(jsonable(meta), indent=2))
        return
    _print_info(out, meta)


def _print_info(out: Console, meta: Mapping[str, Any]) -> None:
    out.print(Text.assemble((str(meta["name"]), "bold"), f" ({meta['kind']})"), soft_wrap=True)
    if meta.get("description"):
        out.print(str(meta["description"]), soft_wrap=True)
    shape = " × ".join(str(s) for s in meta.get("image_shape", ()))
    out.print(f"images: {int(meta['n_images']):,} of shape {shape} (H × W × C), uint8",
              soft_wrap=True)
    table = Table(title="factors", caption="the last factor varies fastest in the index")
    table.add_column("factor", style="bold")
    table.add_column("size", justify="right")
    table.add_column("values", overflow="fold")
    for fname, f in meta["factors"].items():
        table.add_row(Text(fname), Text(str(f["size"])), Text(_short_values(f["values"])))
    out.print(table)
    source = meta.get("source") or {}
    parts = [f"{k}: {v}" for k, v in source.items() if v is not None and k != "name"]
    out.print("source: " + ("; ".join(parts) or "-"), soft_wrap=True)
    if meta.get("licence"):
        out.print(f"licence: {meta['licence']}", soft_wrap=True)
    if meta.get("procedural_alternative"):
        out.print(f"procedural alternative: {meta['procedural_alternative']}", soft_wrap=True)


def _print_registry_meta(out: Console, meta: Mapping[str, Any]) -> None:
    out.print(Text.assemble((str(meta["name"]), "bold"), f" ({meta['kind']}, files missing)"),
              soft_wrap=True)
    if meta.get("description"):
        out.print(str(meta["description"]), soft_wrap=True)
    out.print(f"images: {int(meta['n_images']):,}", soft_wrap=True)
    table = Table(title="factors", caption="the last factor varies fastest in the index")
    table.add_column("factor", style="bold")
    table.add_column("size", justify="right")
    for fname, f in meta["factors"].items():
        table.add_row(Text(fname), Text(str(f["size"])))
    out.print(table)
    for f, path in meta["files"].items():
        url = meta["urls"].get(f)
        sums = meta["sha256"].get(f) or []
        out.print(Text.assemble("file ", (f, "bold"), f": put it at {path}"), soft_wrap=True)
        if url:
            out.print(f"  from {url}", soft_wrap=True)
        for s in sums:
            out.print(f"  sha256 {s}", soft_wrap=True)
    if meta.get("licence"):
        out.print(f"licence: {meta['licence']}", soft_wrap=True)
    if meta.get("procedural_alternative"):
        out.print(f"procedural alternative: {meta['procedural_alternative']}", soft_wrap=True)
    out.print(f"then: {meta['advice']}", soft_wrap=True)


@data_app.command()
def show(
    name: Name,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="PNG to write. Default: NAME.png in the current folder.",
                     show_default=False),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the base factor configuration.")] = 0,
    n_per_factor: Annotated[
        int, typer.Option(min=1, help="Most values shown per factor (evenly spaced).")
    ] = 10,
    zoom: Annotated[int, typer.Option(min=1, help="Enlarge every image this many times.")] = 1,
    label: Annotated[bool, typer.Option(help="Write factor names left of the rows.")] = True,
    data_dir: DataDir = None,
    option: OptionList = None,
    debug: Debug = False,
) -> None:
    """Write a factor grid of NAME: one row per factor, varying it from a random base."""
    with _user_errors(debug):
        from disentkit.data import get_dataset
        from disentkit.data.show import factor_grid, save_png

        options = parse_dataset_options(option)
        ds = get_dataset(name, data_dir=data_dir, **options)
        grid = factor_grid(ds, seed=seed, n_per_factor=n_per_factor, zoom=zoom, label=label)
        path = save_png(grid, out_path if out_path is not None else Path(f"{name}.png"))
    typer.echo(str(path))


def _run_official(
    action: str, name: str, data_dir: Path | None, force: bool, debug: bool
) -> Any:
    """Call ``disentkit.data.official.<action>(name, ...)`` with a progress bar."""
    err = stderr()
    with _user_errors(debug):
        entry = _datasets()[name]
        if entry.kind != "official":
            known = [n for n, i in _datasets().items() if i.kind == "official"]
            raise ValueError(
                f"{name} is a {entry.kind} dataset, rendered on the fly: there is nothing to "
                f"{action}; official datasets: {', '.join(known) or '(none registered)'}"
            )
        official = _official_module()
        fn: Callable[..., Any] | None = getattr(official, action, None)
        if fn is None:
            raise RuntimeError(
                f"this installation cannot {action} official datasets: "
                f"disentkit.data.official.{action} is not available"
            )
        kwargs: dict[str, Any] = {"data_dir": data_dir}
        if force:
            kwargs["force"] = True
        with _ProgressBar(err) as bar:
            return fn(name, progress=bar, **kwargs)


class _ProgressBar:
    """``progress(stage, done, total)`` callback drawing one rich bar per stage on stderr."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._started = False

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._progress.stop()

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self._started:  # nothing is drawn for calls that report no progress
            self._progress.start()
            self._started = True
        task = self._tasks.get(stage)
        if task is None:
            task = self._progress.add_task(_STAGE_LABELS.get(stage, stage), total=total,
                                           amount="")
            self._tasks[stage] = task
        if stage in _BYTE_STAGES:
            amount = decimal(done) + ("" if total is None else f" / {decimal(total)}")
        else:
            amount = f"{done:,}" + ("" if total is None else f" / {total:,}")
        self._progress.update(task, completed=done, total=total, amount=amount)


@data_app.command()
def download(
    name: Annotated[
        str | None,
        typer.Argument(help="Dataset name (see `disentkit data list`); omit with --all.",
                       show_default=False),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every official dataset that can be fetched.")
    ] = False,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Download again if present.")] = False,
    debug: Debug = False,
) -> None:
    """Download the official files of NAME into <data root>/NAME/ (resumable, retried,
    checksum-verified; an interrupted download resumes when run again)."""
    if all_ == (name is not None):
        with _user_errors(debug):
            raise ValueError("data download needs a dataset NAME or --all (not both); "
                             f"received {'NAME and --all' if all_ else 'neither'}")
    if not all_:
        paths = _run_official("download", str(name), data_dir, force, debug)
        for p in paths or ():
            typer.echo(str(p))
        return
    err = stderr()
    official = _official_module()
    status = getattr(official, "status", None)
    failed = []
    for n, info in _datasets().items():
        if info.kind != "official":
            continue
        s = status(n, data_dir) if status is not None else {}
        if s.get("automatic_download") is False and not s.get("present"):
            err.print(Text.assemble((f"{n}: skipped. ", "bold yellow"),
                                    (str(s.get("advice", "")), "yellow")), soft_wrap=True)
            continue
        try:
            paths = _run_official("download", n, data_dir, force, debug)
        except typer.Exit:
            failed.append(n)
            continue
        for p in paths or ():
            typer.echo(str(p))
    if failed:
        error(f"could not download: {', '.join(failed)} (the others are in place; run the "
              "command again to resume)")
        raise typer.Exit(1)


@data_app.command()
def prepare(
    name: Name,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild an up-to-date cache.")] = False,
    debug: Debug = False,
) -> None:
    """Convert the official files of NAME once to a memory-mapped cache (prepared/)."""
    folder = _run_official("prepare", name, data_dir, force, debug)
    if folder is not None:
        typer.echo(str(folder))
