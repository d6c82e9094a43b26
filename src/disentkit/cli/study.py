"""``disentkit study``: run studies of many models from one spec, collect and report them.

Commands:

- ``disentkit study run SPEC [--out DIR]``: run every run of the spec that is not done
  yet, on Ray Tune (a local Ray instance, or a cluster with ``--address``) or with
  ``--executor local`` one after another in this process; ``--model-num 17`` (or ``3-9``,
  ``0,4,7-8``) runs only those. Writes ``results.parquet``/``results.csv`` and the study
  report.
- ``disentkit study list SPEC``: the runs and their numbers (``--count``: how many, for a
  job array).
- ``disentkit study collect DIR``: rebuild the results table from the run directories.
- ``disentkit study report DIR``: the study's HTML page.

Bad input ends with one red paragraph on stderr and exit code 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from disentkit._console import error, stderr, stdout
from disentkit._extras import MissingExtraError, require
from disentkit.cli._common import DEBUG_HINT
from disentkit.rundir import FAILED_NAME, REPORT_NAME, RESULTS_CSV, RUNS_DIR, StudyDir

__all__ = ["study_app"]

study_app = typer.Typer(
    name="study",
    help="Run studies (datasets × models × hyper-parameters × seeds) on Ray, collect "
    "their results, report them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
SpecArg = Annotated[Path, typer.Argument(help="Study spec (YAML or JSON).", show_default=False)]
DirArg = Annotated[Path, typer.Argument(help="Study directory.", show_default=False)]
ModelNum = Annotated[
    str | None,
    typer.Option("--model-num", metavar="N|A-B|LIST",
                 help="Only these runs: 17, 3-9 (inclusive) or 0,4,7-8. Default: all.",
                 show_default=False),
]


@contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """Bad input (ValueError/TypeError/KeyError) and missing files: one red paragraph."""
    try:
        yield
    except (ValueError, TypeError, KeyError, FileNotFoundError, ImportError) as exc:
        if debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        hint = "" if isinstance(exc, MissingExtraError) else DEBUG_HINT
        error(str(message) or type(exc).__name__, hint)
        raise typer.Exit(2) from None


def _runs_table(runs: list[Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("#", "run", "dataset", "model", "seed", "hyper-parameters"):
        table.add_column(name, justify="right" if name in ("#", "seed") else "left")
    for r in runs:
        hp = ", ".join(f"{k}={v}" for k, v in r.hparams.items()) or "—"
        table.add_row(str(r.model_num), r.name, r.dataset, r.model, str(r.seed), hp)
    return table


def _main_score_columns(frame: Any, limit: int = 4) -> list[str]:
    preferred = ["score.infomec.infom", "score.infomec.infoc", "score.infomec.infoe",
                 "score.dci.disentanglement", "score.dci.completeness", "score.mig",
                 "score.sap", "score.modularity"]
    chosen = [c for c in preferred if c in frame.columns][:limit]
    return chosen


_SHORT = {"score.infomec.infom": "InfoM", "score.infomec.infoc": "InfoC",
          "score.infomec.infoe": "InfoE", "score.dci.disentanglement": "DCI-D",
          "score.dci.completeness": "DCI-C", "score.mig": "MIG", "score.sap": "SAP",
          "score.modularity": "Mod."}


def _results_table(frame: Any, selected: list[int] | None = None) -> Table:
    rows = frame if selected is None else frame[frame["model_num"].isin(selected)]
    scores = _main_score_columns(frame)
    hp = [c for c in frame.columns if c.startswith("hp.")]
    table = Table(title="results", title_justify="left")
    hp_names = [c[3:].removeprefix("model.") for c in hp]
    for name in ("#", "model", "seed", *hp_names, "status", *[_SHORT[c] for c in scores],
                 "BCE/px"):
        table.add_column(name, justify="left" if name in ("model", "status") else "right",
                         no_wrap=name in ("model", "status"))
    style = {"done": "green", "failed": "red", "pending": "yellow"}
    for _, row in rows.iterrows():
        cells = [str(row["model_num"]), str(row["model"]), str(row["seed"])]
        cells += ["—" if row[c] is None or row[c] != row[c] else f"{row[c]}" for c in hp]
        cells.append(f"[{style.get(row['status'], '')}]{row['status']}[/]")
        for c in [*scores, "recon.bce_per_pixel"]:
            value = row.get(c)
            cells.append("—" if value is None or value != value else f"{float(value):.3f}")
        table.add_row(*cells)
    return table


@study_app.command("run")
def run_command(
    spec: SpecArg,
    out: Annotated[Path | None, typer.Option("--out", help="Study directory "
                   "(default studies/<name>).", show_default=False)] = None,
    model_num: ModelNum = None,
    executor: Annotated[Literal["ray", "local", "vectorized"], typer.Option(
        "--executor", help="ray: concurrent runs on Ray Tune with retries; local: one run "
        "after another in this process (job arrays, debugging); vectorized: runs that differ "
        "only in seed (or a loss weight) trained as one vectorised model, the others one by "
        "one.")] = "ray",
    group_size: Annotated[int | None, typer.Option(
        "--group-size", help="Most runs per vectorised model (--executor vectorized).",
        show_default=False)] = None,
    address: Annotated[str | None, typer.Option(
        "--address", help="Existing Ray cluster ('auto', 'ray://HOST:10001'); default: a "
        "local Ray instance.", show_default=False)] = None,
    num_cpus: Annotated[int | None, typer.Option(
        "--num-cpus", help="CPUs of the local Ray instance (default: all).",
        show_default=False)] = None,
    cpus_per_trial: Annotated[float | None, typer.Option(
        "--cpus-per-trial", help="Override resources.cpus_per_trial.",
        show_default=False)] = None,
    gpus_per_trial: Annotated[float | None, typer.Option(
        "--gpus-per-trial", help="Override resources.gpus_per_trial.",
        show_default=False)] = None,
    max_concurrent: Annotated[int | None, typer.Option(
        "--max-concurrent", help="Override resources.max_concurrent.",
        show_default=False)] = None,
    max_retries: Annotated[int | None, typer.Option(
        "--max-retries", help="Override resources.max_retries.", show_default=False)] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="Override every run's config, e.g. --set "
        "train.steps=20 --set eval.n_samples=1000 (train.KEY: the run-config field KEY; "
        "other keys as in `disentkit train --set`); repeatable. Recorded in the study "
        "directory.", show_default=False)] = None,
    report: Annotated[bool, typer.Option("--report/--no-report",
                      help=f"Write the study's {REPORT_NAME} at the end.")] = True,
    debug: Debug = False,
) -> None:
    """Run the runs of a study spec that are not done yet (a finished run is never redone).

    A failed or killed run is retried and continues from its last checkpoint. Results go
    to DIR/results.parquet and DIR/results.csv, the page to DIR/report.html.
    """
    err, console = stderr(), stdout()
    with _errors(debug):
        require("study", "viz", "train", what="disentkit study run")
        from disentkit.study import run_study

        outcome = run_study(spec, out, model_nums=model_num, executor=executor,
                            address=address, num_cpus=num_cpus,
                            cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                            max_concurrent=max_concurrent, max_retries=max_retries,
                            overrides=overrides,
                            **({} if group_size is None else {"group_size": group_size}))
        study = outcome.study_dir
        if outcome.selected:
            console.print(_results_table(outcome.results, list(outcome.selected)))
        done, failed = outcome.count("done"), outcome.count("failed")
        pending = outcome.count("pending")
        summary = (f"{done} done, {failed} failed, {pending} pending of "
                   f"{len(outcome.selected)} selected runs ({len(outcome.ran)} run now, "
                   f"{len(outcome.skipped)} already done)")
        console.print(summary, soft_wrap=True)
        console.print(f"Results: {StudyDir(study).results_parquet.resolve()} (and {RESULTS_CSV})",
                      soft_wrap=True)
        if report:
            _write_report(study)
        if failed:
            err.print(Text(f"{failed} run(s) failed; their errors are in the table and in "
                           f"{RUNS_DIR}/run-NNNNN/{FAILED_NAME}. Running the same command again "
                           "retries them.", style="yellow"), soft_wrap=True)
            raise typer.Exit(1)


def _write_report(study: Path, **options: Any) -> Path:
    from disentkit.study import write_study_report

    err = stderr()
    with err.status("writing the study report") as status:
        path = write_study_report(study, progress=lambda label: status.update(label),
                                  **options)
    stdout().print(f"Report: {Path(path).resolve()}", soft_wrap=True)
    return Path(path)


@study_app.command("list")
def list_command(
    spec: SpecArg,
    model_num: ModelNum = None,
    count: Annotated[bool, typer.Option("--count", help="Print only the number of runs.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs (with their full "
                       "run configs) as JSON.")] = False,
    debug: Debug = False,
) -> None:
    """List the runs of a spec with their numbers (what --model-num selects)."""
    out = stdout()
    with _errors(debug):
        require("study", "viz", what="disentkit study list")
        from disentkit.study import expand, load_spec, parse_model_nums

        runs = expand(load_spec(spec))
        if count:
            typer.echo(str(len(runs)))
            return
        picked = [runs[n] for n in parse_model_nums(model_num, len(runs))]
        if as_json:
            typer.echo(json.dumps([
                {"model_num": r.model_num, "run_name": r.name, "dataset": r.dataset,
                 "model": r.model, "seed": r.seed, "hparams": r.hparams, "config": r.config}
                for r in picked], indent=2))
            return
        out.print(_runs_table(picked, f"{len(picked)} of {len(runs)} runs"))


@study_app.command("collect")
def collect_command(study_dir: DirArg, debug: Debug = False) -> None:
    """Rebuild DIR/results.parquet and results.csv from the run directories."""
    out = stdout()
    with _errors(debug):
        require("study", "viz", what="disentkit study collect")
        from disentkit.study import collect, write_results

        frame = collect(study_dir)
        parquet, _ = write_results(study_dir, frame)
        out.print(_results_table(frame))
        counts = frame["status"].value_counts().to_dict()
        out.print(", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "pending")),
                     soft_wrap=True)
        out.print(f"Results: {parquet.resolve()} (and {RESULTS_CSV})", soft_wrap=True)


@study_app.command("report")
def report_command(
    study_dir: DirArg,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Score column to show (e.g. score.mig); repeatable. Default: the "
        "main scores.", show_default=False)] = None,
    primary: Annotated[str | None, typer.Option(
        "--primary", help="Score column that ranks the best and worst run of each model.",
        show_default=False)] = None,
    reference: Annotated[str | None, typer.Option(
        "--reference", help="Model the paper-style table compares every other model with "
        "(default: qlae when present, else the first model).", show_default=False)] = None,
    debug: Debug = False,
) -> None:
    """Write DIR/report.html: the paper-style table (mean ± 95 % interval over seeds;
    also DIR/paper_table.csv, .md and paired_vs_REFERENCE.csv), score distributions, metric
    agreement, seed variance, reconstruction vs disentanglement, best and worst traversals
    per model."""
    with _errors(debug):
        require("study", "viz", what="disentkit study report")
        study = Path(study_dir)
        layout = StudyDir(study)
        if not layout.results_parquet.is_file() and layout.spec.is_file():
            from disentkit.study import collect, write_results

            write_results(study, collect(study))
        _write_report(study, metrics=metric, primary=primary, reference=reference)
