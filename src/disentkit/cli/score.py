"""``disentkit score``, ``disentkit metrics`` and ``disentkit demo``: the metric suite on
arrays, the metric registry, and the suite on a built-in example.

Commands:

- ``disentkit score LATENTS [FACTORS]``: score a representation stored in array files with
  the metric suite; prints a table and optionally writes every number to JSON.
- ``disentkit metrics``: the registered metrics and their metadata.
- ``disentkit demo``: the suite on a built-in example (no files, no download).

Bad input (unreadable files, invalid arrays, unknown metrics or options) ends with one red
paragraph on stderr and exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from disentkit._atomic import jsonable, write_json
from disentkit._console import error, stderr, stdout
from disentkit._version import __version__
from disentkit.cli._common import Mode, parse_metric_list, reported_warnings, user_errors

# numpy, scikit-learn and the metrics are imported inside the commands, so that
# `disentkit --help` starts fast.
if TYPE_CHECKING:
    from disentkit.metrics import Evaluation, ScoreRow

__all__ = ["demo", "list_metrics", "parse_options", "score"]

#: Baseline columns, in the order shown.
_BASELINE_ORDER = ("random", "ground_truth")


# --------------------------------------------------------------------------- helpers


class _Reporter:
    """Progress for ``evaluate(progress=...)`` on stderr.

    On a terminal: one live, transient status line with a bar. Elsewhere (pipes, logs,
    tests): one line per metric run, and one per bootstrap replicate rather than per metric.
    """

    def __init__(self, console: Console, total: int, n_bootstrap: int = 0) -> None:
        self.console = console
        self.total = max(total, 1)
        self.n_bootstrap = n_bootstrap
        self.count = 0
        self.live = console.is_terminal
        self._last_replicate: str | None = None
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("", total=self.total)
        self.start = time.perf_counter()

    def __enter__(self) -> _Reporter:
        self.start = time.perf_counter()
        if self.live:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self._progress.stop()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, label: str) -> None:
        self.count += 1
        if self.live:
            self._progress.update(
                self._task, completed=self.count - 1, description=escape(label)
            )
            return
        replicate = re.search(r"bootstrap (\d+): ", label)
        if replicate is not None:
            if replicate.group(1) == self._last_replicate:
                return
            self._last_replicate = replicate.group(1)
            label = label[: replicate.start()] + (
                f"bootstrap {replicate.group(1)}/{self.n_bootstrap}"
            )
        self.console.print(
            Text.assemble((f"[{self.count}/{self.total}] ", "dim"), f"scoring {label}"),
            soft_wrap=True,
        )


def parse_options(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """Parse ``--option METRIC.NAME=VALUE`` items into ``evaluate(options=...)``.

    Values are read as JSON when they parse (``30``, ``0.5``, ``true``, ``null``,
    ``[1, 2]``, ``"x"``) and kept as strings otherwise (``hist``).

    Example:
        >>> parse_options(["dci.backend=hist", "mig.n_bins=30", "mig.estimator=knn"])
        {'dci': {'backend': 'hist'}, 'mig': {'n_bins': 30, 'estimator': 'knn'}}
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        name, equals, raw = item.partition("=")
        metric, dot, option = name.strip().partition(".")
        if not equals or not dot or not metric or not option.isidentifier():
            raise ValueError(
                f"--option expects METRIC.NAME=VALUE, e.g. --option dci.backend=hist; "
                f"received {item!r}"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(metric, {})[option] = value
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if math.isfinite(value) else "nan"


def _direction(metric: str, score: str) -> str:
    from disentkit.metrics import METRICS

    info = METRICS.get(metric)
    if info is None:
        return ""
    for s in info.scores:
        if s.name == score:
            return "↑" if s.higher_is_better else "↓"
    return ""


_LEGEND = "↑ higher is better, ↓ lower is better"


def _grouped(rows: Sequence[ScoreRow]) -> Iterator[tuple[Text, ScoreRow | None]]:
    """Label cells that group each metric's scores under its metric ID.

    A metric with one score named ``score`` gets one row labelled with its ID; otherwise a
    header row (``None`` in place of a score) carries the ID and each score follows,
    indented.
    """
    groups: dict[str, list[ScoreRow]] = {}
    for r in rows:
        groups.setdefault(r.metric, []).append(r)
    for group in groups.values():
        first = group[0]
        if len(group) == 1 and first.score == "score":
            arrow = _direction(first.metric, first.score)
            yield Text.assemble((first.metric_id, "cyan"), f" {arrow}".rstrip()), first
            continue
        yield Text(first.metric_id, style="cyan"), None
        for r in group:
            yield Text(f"  {r.score} {_direction(r.metric, r.score)}".rstrip()), r


def _score_table(evaluation: Evaluation) -> Table:
    rows = evaluation.rows()
    has_ci = any(r.ci_low is not None for r in rows)
    baselines = [b for b in _BASELINE_ORDER if any(b in r.baselines for r in rows)]
    table = Table(
        title=f"disentkit scores ({evaluation.mode} mode, seed {evaluation.seed})",
        caption=_LEGEND,
    )
    table.add_column("metric ID / score", overflow="fold")
    table.add_column("value", justify="right", style="bold", no_wrap=True)
    if has_ci:
        table.add_column(f"{evaluation.confidence:.0%} CI", justify="right", no_wrap=True)
    for b in baselines:
        table.add_column(b.replace("_", "\n"), justify="right", style="dim", no_wrap=True)
    for label, r in _grouped(rows):
        cells = [label]
        if r is not None:
            cells.append(Text(_fmt(r.value)))
            if has_ci:
                ci = "" if r.ci_low is None else f"{_fmt(r.ci_low)}–{_fmt(r.ci_high)}"
                cells.append(Text(ci))
            cells += [Text(_fmt(r.baselines.get(b))) for b in baselines]
        table.add_row(*cells)
    return table


# --------------------------------------------------------------------------- commands


def score(
    latents: Annotated[
        Path,
        typer.Argument(
            help="Latents (n_samples, n_latents): .npy, .npz, .safetensors or .csv file.",
            show_default=False,
        ),
    ],
    factors: Annotated[
        Path | None,
        typer.Argument(
            help="Integer factors (n_samples, n_factors), same formats. Omit it when LATENTS "
            "is an .npz/.safetensors file holding both arrays.",
            show_default=False,
        ),
    ] = None,
    latents_key: Annotated[
        str | None,
        typer.Option(help="Array name of the latents in an .npz/.safetensors file."),
    ] = None,
    factors_key: Annotated[
        str | None,
        typer.Option(help="Array name of the factors in an .npz/.safetensors file."),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            "-m",
            metavar="NAMES",
            help="Comma-separated metric names (see `disentkit metrics`), or 'all'. "
            "Default: the default suite.",
            show_default=False,
        ),
    ] = None,
    mode: Annotated[
        Mode,
        typer.Option(help="reference: published settings; fast: each metric's fast options."),
    ] = "reference",
    seed: Annotated[int, typer.Option(help="Seed handed to every metric.")] = 0,
    shuffle: Annotated[
        bool,
        typer.Option("--shuffle", help="Permute rows with the seed before train/test splits."),
    ] = False,
    n_bootstrap: Annotated[
        int, typer.Option(help="Bootstrap replicates for confidence intervals (0: none).")
    ] = 0,
    confidence: Annotated[float, typer.Option(help="Level of the bootstrap intervals.")] = 0.95,
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines",
            help="Also score random Gaussian latents and the ground-truth factors as latents.",
        ),
    ] = False,
    n_jobs: Annotated[
        int, typer.Option(help="Parallel jobs for per-factor fits (-1: every core; the "
                          "numbers do not depend on it).")
    ] = -1,
    label_encode: Annotated[
        bool,
        typer.Option("--label-encode", help="Factors given as text labels (e.g. a CSV column "
                     "of colour names): number each column's labels in sorted order; the "
                     "mapping is recorded in the --json output."),
    ] = False,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write every score, option, sample count and input checksum to this file "
            "('-': to standard output, instead of the table).",
            show_default=False,
        ),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            metavar="METRIC.NAME=VALUE",
            help="Metric option METRIC.NAME=VALUE (value read as JSON when it parses), "
            "e.g. -o mig.n_bins=30. Repeatable.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Score a representation stored in array files with the metric suite."""
    from disentkit.io import read_pair
    from disentkit.metrics import default_suite, evaluate

    err = stderr()
    with user_errors(debug):
        pair = read_pair(latents, factors, latents_key=latents_key, factors_key=factors_key,
                          label_encode_factors=label_encode)
        for column, labels in pair.label_encoding.items():
            shown = ", ".join(f"{i}={lab}" for i, lab in enumerate(labels[:6]))
            err.print(Text(f"factor column {column}: {len(labels)} labels encoded as "
                           f"{shown}{', ...' if len(labels) > 6 else ''}", style="dim"),
                      soft_wrap=True)
        names = parse_metric_list(metrics) or default_suite()
        overrides = parse_options(option)
        wanted = list(_BASELINE_ORDER) if baselines else []
        total = len(names) * (1 + max(n_bootstrap, 0) + len(wanted))
        with reported_warnings(err), _Reporter(err, total, n_bootstrap) as reporter:
            evaluation = evaluate(
                pair.latents,
                pair.factors,
                metrics=names,
                mode=mode,
                seed=seed,
                options=overrides,
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                baselines=wanted,
                shuffle=shuffle,
                n_jobs=n_jobs,
                progress=reporter,
            )
        err.print(
            Text(f"scored {len(names)} metric(s) in {reporter.seconds:.1f} s", style="dim"),
            soft_wrap=True,
        )
    to_stdout = json_path is not None and str(json_path) == "-"
    (err if to_stdout else stdout()).print(_score_table(evaluation))
    if json_path is None:
        return
    digests: dict[Path, str] = {}
    inputs = {}
    for role, path, key, arr in (
        ("latents", latents, pair.latents_key, pair.latents),
        ("factors", factors if factors is not None else latents, pair.factors_key, pair.factors),
    ):
        resolved = path.resolve()
        if resolved not in digests:
            digests[resolved] = _sha256(resolved)
        inputs[role] = {
            "path": str(path),
            "key": key,
            "shape": list(arr.shape),
            "dtype": str(arr.dtype),
            "sha256": digests[resolved],
        }
        if role == "factors" and pair.label_encoding:  # code → label, per encoded column
            inputs[role]["label_encoding"] = {str(c): v for c, v in pair.label_encoding.items()}
    payload = {
        "disentkit_version": __version__,
        "inputs": inputs,
        "requested": {
            "metrics": names,
            "options": overrides,
            "baselines": wanted,
            "shuffle": shuffle,
            "n_jobs": n_jobs,
        },
        **evaluation.to_json(),
    }
    if to_stdout:  # machine-readable: only the JSON on standard output
        typer.echo(json.dumps(jsonable(payload), indent=2, allow_nan=False))
        return
    try:
        written = write_json(json_path, payload)
    except OSError as exc:
        error(f"could not write {json_path}: {exc}")
        raise typer.Exit(1) from None
    err.print(Text(f"wrote {written}", style="dim"), soft_wrap=True)


def list_metrics(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the registry as JSON instead of a table.")
    ] = False,
) -> None:
    """List the registered metrics: scores, bounds, direction, kind and fast options."""
    from disentkit.metrics import METRICS

    entries = [
        {
            "name": name,
            "version": info.version,
            "scores": [
                {
                    "name": s.name,
                    "bounds": list(s.bounds),
                    "higher_is_better": s.higher_is_better,
                }
                for s in info.scores
            ],
            "kind": info.kind,
            "in_default_suite": info.in_default_suite,
            "fast_options": dict(info.fast_options),
            "reference": info.reference,
        }
        for name, info in METRICS.items()
    ]
    if as_json:
        typer.echo(json.dumps(jsonable(entries), indent=2))
        return
    table = Table(
        title=f"{len(entries)} registered metric(s)",
        caption=Text(
            "scores: name [bounds] and direction (↑ higher is better); "
            "default: in the default suite"
        ),
    )
    table.add_column("metric", style="bold", overflow="fold")
    table.add_column("scores", overflow="fold")
    table.add_column("kind")
    table.add_column("default", overflow="fold")
    table.add_column("fast options", overflow="fold")
    table.add_column("reference", style="dim", overflow="fold")
    for e in entries:
        scores = "\n".join(
            f"{s['name']} [{s['bounds'][0]:g}, {s['bounds'][1]:g}] "
            f"{'↑' if s['higher_is_better'] else '↓'}"
            for s in e["scores"]
        )
        fast = "\n".join(f"{k}={json.dumps(jsonable(v))}" for k, v in e["fast_options"].items())
        table.add_row(
            *(
                Text(c)
                for c in (
                    f"{e['name']}@{e['version']}",
                    scores,
                    e["kind"],
                    "yes" if e["in_default_suite"] else "no",
                    fast or "-",
                    e["reference"],
                )
            )
        )
    stdout().print(table)


def _comparison(
    evaluations: Mapping[str, Evaluation],
) -> tuple[dict[str, tuple[dict[str, float], list[str]]], dict[str, int]]:
    """Per score key: ``({representation: value}, best representations)``, and how often
    each representation is best.

    Values equal at the three decimals shown count as ties; every tied representation wins.
    """
    reps = list(evaluations)
    by_rep = {rep: {r.key: r for r in ev.rows()} for rep, ev in evaluations.items()}
    wins = dict.fromkeys(reps, 0)
    out = {}
    for row in evaluations[reps[0]].rows():
        values = {rep: by_rep[rep][row.key].value for rep in reps if row.key in by_rep[rep]}
        finite = {rep: round(v, 3) for rep, v in values.items() if math.isfinite(v)}
        best: list[str] = []
        if finite:
            higher = _direction(row.metric, row.score) != "↓"
            target = max(finite.values()) if higher else min(finite.values())
            best = [rep for rep, v in finite.items() if v == target]
            for rep in best:
                wins[rep] += 1
        out[row.key] = (values, best)
    return out, wins


def _takeaway(wins: Mapping[str, int], n_scores: int) -> str:
    d, e, r = (wins.get(k, 0) for k in ("disentangled", "entangled", "random"))
    if d == n_scores and e < n_scores:
        verdict = "every score rewards axis-aligned factors over the same information rotated"
    elif d > e:
        verdict = "most scores reward axis-aligned factors, not just information"
    else:
        verdict = "here the scores do not favour axis-aligned over rotated factors"
    return (
        f"Takeaway: the disentangled representation is best (or tied) on {d} of {n_scores} "
        f"scores, the entangled one (same information, rotated) on {e}, random noise on {r}: "
        f"{verdict}."
    )


def demo(
    n_samples: Annotated[
        int, typer.Option(min=10, help="Samples in the example data set.")
    ] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the data and of every metric.")] = 0,
    mode: Annotated[Mode, typer.Option(help="Metric settings: fast or reference.")] = "fast",
    output: Annotated[
        Path, typer.Option("--output", help="Where to write the results as JSON.")
    ] = Path("demo-results.json"),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Score three representations of a built-in example with the default suite."""
    from disentkit._demo import DEMO_DESCRIPTIONS, DEMO_FACTOR_SIZES, demo_data
    from disentkit.metrics import default_suite, evaluate

    out, err = stdout(), stderr()
    sizes = "/".join(map(str, DEMO_FACTOR_SIZES))
    out.print(
        f"Demo data: {n_samples:,} samples of {len(DEMO_FACTOR_SIZES)} independent factors "
        f"with {sizes} classes (seed {seed}), three representations of them:",
        soft_wrap=True,
    )
    for name, text in DEMO_DESCRIPTIONS.items():
        out.print(Text.assemble("  ", (name, "bold"), f": {text}"), soft_wrap=True)
    with user_errors(debug):
        data = demo_data(seed=seed, n_samples=n_samples)
        names = default_suite()
        evaluations: dict[str, Evaluation] = {}
        with reported_warnings(err), _Reporter(err, len(names) * len(data)) as reporter:
            for rep, (latents, factors) in data.items():
                evaluations[rep] = evaluate(
                    latents,
                    factors,
                    metrics=names,
                    mode=mode,
                    seed=seed,
                    progress=lambda label, rep=rep: reporter(f"{rep}: {label}"),
                )
        err.print(
            Text(
                f"scored {len(data)} representations with {len(names)} metric(s) in "
                f"{reporter.seconds:.1f} s",
                style="dim",
            ),
            soft_wrap=True,
        )
    compared, wins = _comparison(evaluations)
    table = Table(
        title=f"Default suite, {mode} mode, seed {seed}",
        caption=f"{_LEGEND}; best per row in green",
    )
    table.add_column("metric ID / score", overflow="fold")
    for rep in evaluations:
        table.add_column(rep, justify="right", no_wrap=True)
    first = next(iter(evaluations.values()))
    for label, row in _grouped(first.rows()):
        cells = [label]
        if row is not None:
            values, best = compared[row.key]
            for rep in evaluations:
                style = "bold green" if rep in best else ""
                cells.append(Text(_fmt(values.get(rep)), style=style))
        table.add_row(*cells)
    out.print(table)
    takeaway = _takeaway(wins, len(compared))
    out.print(takeaway, soft_wrap=True)
    payload = {
        "disentkit_version": __version__,
        "demo": {
            "seed": seed,
            "n_samples": n_samples,
            "mode": mode,
            "factor_sizes": list(DEMO_FACTOR_SIZES),
            "representations": DEMO_DESCRIPTIONS,
            "metrics": names,
        },
        "takeaway": takeaway,
        "results": {rep: ev.to_json() for rep, ev in evaluations.items()},
    }
    try:
        written = write_json(output, payload)
    except OSError as exc:
        error(f"could not write {output}: {exc}")
        raise typer.Exit(1) from None
    out.print(f"Wrote every score, option and metric ID to {written.resolve()}", soft_wrap=True)
