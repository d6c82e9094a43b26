"""``disentkit train`` and ``disentkit evaluate``: train a registered model, score a run.

Both commands are thin: they build a :class:`~disentkit.train.RunConfig`, call
:func:`~disentkit.train.fit` / :func:`~disentkit.train.evaluate_run`, and print where the
results are. torch and Lightning are imported only when a command runs. Bad input ends
with one red paragraph on stderr and exit code 2, as for the other commands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from disentkit._console import stderr, stdout
from disentkit._extras import require
from disentkit.cli._common import (
    Mode,
    log_to_trackers,
    parse_metric_list,
    reported_warnings,
    run_errors,
)
from disentkit.cli.report import run_report_if_installed
from disentkit.rundir import (
    CHECKPOINT_PATH,
    CONFIG_NAME,
    DEFAULT_RUNS_ROOT,
    REPORT_NAME,
    RunDir,
)

__all__ = ["evaluate_command", "train_command"]


def _scores_table(result: Mapping[str, Any]) -> Table:
    reps: Mapping[str, Any] = result["representations"]
    kinds = list(reps)
    keys: list[str] = []
    for entry in reps.values():
        for key in entry["scores"]:
            if not key.endswith(".metric_id") and key not in keys:
                keys.append(key)
    table = Table(title=f"scores of {result['model']['name']} at step {result['model']['step']} "
                        f"({result['mode']} mode, {result['n_samples']:,} samples, "
                        f"seed {result['seed']})")
    table.add_column("score", overflow="fold")
    table.add_column("metric ID", style="dim", overflow="fold")
    for kind in kinds:
        table.add_column(kind, justify="right", no_wrap=True)
    for key in keys:
        metric = key.split(".", 1)[0]
        ids = {entry["scores"].get(f"{metric}.metric_id") for entry in reps.values()} - {None}
        cells = [Text(key, style="cyan"), Text(", ".join(sorted(ids)))]
        for kind in kinds:
            value = reps[kind]["scores"].get(key)
            text = "" if value is None else (
                f"{value:.3f}" if isinstance(value, float) and math.isfinite(value) else "nan"
            )
            cells.append(Text(text))
        table.add_row(*cells)
    return table


def _summary_lines(result: Mapping[str, Any]) -> list[str]:
    rec = result["reconstruction"]
    lines = [
        f"reconstruction: BCE {rec['bce_per_image']:.2f} per image "
        f"({rec['bce_per_pixel']:.4f} per pixel), MSE {rec['mse_per_image']:.2f} per image"
    ]
    active = result.get("active_latents")
    if active:
        lines.append(
            f"active latents: {active['n_active']} of {len(active['active'])} "
            f"({active['metric_id']})"
        )
    return lines


def _run_evaluation(
    run_dir: Path, *, n_samples: int, metrics: list[str] | None, mode: str, seed: int,
    batch_size: int = 256, n_bootstrap: int = 0, baselines: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
) -> None:
    from disentkit.train import evaluate_run

    err, out = stderr(), stdout()
    err.print(Text(f"evaluating {run_dir} on {n_samples:,} samples ({mode} mode)", style="dim"),
              soft_wrap=True)

    def report(label: str) -> None:
        err.print(Text(f"scoring {label}", style="dim"), soft_wrap=True)

    with reported_warnings(err):
        result = evaluate_run(run_dir, n_samples=n_samples, metrics=metrics, mode=mode,
                              seed=seed, batch_size=batch_size, progress=report,
                              n_bootstrap=n_bootstrap, baselines=baselines,
                              options=options)
    out.print(_scores_table(result))
    for line in _summary_lines(result):
        out.print(line, soft_wrap=True)
    out.print(f"Wrote every score, option and metric ID to {RunDir(run_dir).metrics.resolve()}",
              soft_wrap=True)


def _on_cpu(accelerator: str) -> bool:
    """Whether a run with this ``accelerator`` setting trains on the CPU."""
    if accelerator != "auto":
        return accelerator == "cpu"
    import torch

    return not torch.cuda.is_available()


def train_command(
    model: Annotated[
        str | None,
        typer.Option(help="Model registry name, e.g. qlae, beta_vae.", show_default=False),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="Dataset registry name, e.g. dsprites_procedural.",
                     show_default=False),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Training steps (default 10000).", show_default=False)
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the run (default 0).", show_default=False)
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Images per step (default 64).", show_default=False)
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option(help=f"Run directory (default {DEFAULT_RUNS_ROOT}/<model>-<data>-seed<seed>).",
                     show_default=False),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(help=f"Write {CHECKPOINT_PATH.as_posix()} every N steps (default 1000).",
                     show_default=False),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the run in --run-dir from its last checkpoint "
                     f"(its {CONFIG_NAME} is the base; --steps may extend it), or start it "
                     "there if the directory holds no run yet."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Run config file (YAML or JSON).", show_default=False),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option("--seeds", help="Train several seeds as one vectorised model, e.g. 0-7 "
                     "or 0,3,5; each ends as its own run directory (RUN_DIR/seed<k>).",
                     show_default=False),
    ] = None,
    set_list: Annotated[
        list[str] | None,
        typer.Option("--set-list", metavar="KEY=V1,V2", help="Vectorise over values of a "
                     "numeric option too, e.g. --set-list model.beta=1,4,8 (with --seeds: "
                     "every combination); repeatable.", show_default=False),
    ] = None,
    vectorize: Annotated[
        str,
        typer.Option("--vectorize", metavar="STRATEGY",
                     help="With --seeds/--set-list, how the members' gradients are taken: "
                     "auto (vmap on a GPU, loop on a CPU), vmap (one batched computation), "
                     "loop (member after member, bit for bit the single runs) or threads "
                     "(members side by side, a CPU core each)."),
    ] = "auto",
    recipe: Annotated[
        str | None,
        typer.Option("--recipe", help="Start from a shipped recipe (published settings), e.g. "
                     "qlae2023/qlae/shapes3d; flags and --set go on top. `disentkit recipes "
                     "list` names them.", show_default=False),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE",
                     help="Config override with a dotted key, e.g. --set model.weight_decay=0.1 "
                     "--set precision=bf16-mixed --set eval.mode=fast. Repeatable.",
                     show_default=False),
    ] = None,
    evaluate: Annotated[
        bool,
        typer.Option("--evaluate/--no-evaluate",
                     help="Score the model when training ends (settings from eval.*)."),
    ] = True,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show training progress.")
    ] = True,
    report: Annotated[
        bool,
        typer.Option("--report/--no-report",
                     help=f"Write RUN/{REPORT_NAME} (config, scores, figures) at the end."),
    ] = True,
    print_config: Annotated[
        bool,
        typer.Option("--print-config", help="Print the fully resolved run config (YAML, "
                     "every default written out) and exit; save it and pass it to --config "
                     "to train the same run."),
    ] = False,
    config_schema: Annotated[
        bool,
        typer.Option("--config-schema", help="Print the JSON Schema of run config files "
                     "(for editors) and exit."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Train a registered model on a registered dataset, then score it.

    Writes a run directory: config.json, checkpoints/last.ckpt, log/metrics.csv,
    model.safetensors + model.json, (unless --no-evaluate) metrics.json and (unless
    --no-report) report.html. The trackers of the config's loggers section (TensorBoard,
    MLflow, W&B) get the losses, then the scores and figures.
    """
    err, out = stderr(), stdout()
    with run_errors(debug):
        require("train", what="disentkit train")
        from disentkit.train.config import (
            apply_overrides,
            build_config,
            config_json_schema,
            read_config_file,
            resolved_config_text,
        )

        if config_schema:
            typer.echo(json.dumps(config_json_schema(), indent=2))
            return
        tree: dict[str, Any] = {}
        if recipe is not None and config is not None:
            raise ValueError("--recipe and --config both give a whole config; use one (put "
                             "changes to a recipe in --set KEY=VALUE)")
        if recipe is not None:
            from disentkit.recipes import load_recipe

            tree = load_recipe(recipe)
        elif config is not None:
            tree = read_config_file(config)
        elif resume and run_dir is not None and RunDir(run_dir).config.is_file():
            tree = read_config_file(RunDir(run_dir).config)
        fields = {"model": model, "data": data, "steps": steps, "seed": seed,
                  "batch_size": batch_size, "checkpoint_every": checkpoint_every}
        tree = apply_overrides(tree, {k: v for k, v in fields.items() if v is not None})
        missing = [k for k in ("model", "data") if not tree.get(k)]
        if missing and not any(s.split("=", 1)[0].strip() in missing for s in set_ or ()):
            raise ValueError(
                f"{' and '.join('--' + k for k in missing)} required (or --config FILE, "
                "--recipe NAME, or --resume --run-dir DIR of an existing run)"
            )
        if resume and run_dir is None:
            raise ValueError("--resume needs --run-dir DIR (the run to continue)")
        cfg = build_config(tree, set_ or ())
        if print_config:
            typer.echo(resolved_config_text(cfg), nl=False)
            return
        from disentkit.train import fit
        from disentkit.train.vectorized import STRATEGIES, train_members

        vectorised = seeds is not None or bool(set_list)
        if vectorize not in STRATEGIES:
            raise ValueError(f"--vectorize must be one of {', '.join(STRATEGIES)}; received "
                             f"{vectorize!r}")
        if vectorize != "auto" and not vectorised:
            raise ValueError(f"--vectorize {vectorize} needs members to vectorise: add "
                             "--seeds (e.g. 0-3) or --set-list")
        what = f"seeds {seeds}" if seeds is not None else f"seed {cfg.seed}"
        if set_list:
            what += ", " + ", ".join(set_list)
        err.print(Text(f"training {cfg.model} on {cfg.data} for {cfg.steps:,} steps "
                       f"(batch {cfg.batch_size}, {what}"
                       f"{', vectorised' if vectorised else ''})", style="dim"),
                  soft_wrap=True)
        if vectorised and _on_cpu(cfg.accelerator) and vectorize in ("auto", "loop"):
            err.print(Text("note: on a CPU, vectorised members train at the speed of the same "
                           "runs one after another (the members are stepped in turn there, "
                           "bit-identical to single runs); vectorising pays on a GPU. See "
                           "docs/benchmarks.md", style="yellow"),
                      soft_wrap=True)
        try:
            paths = (train_members(cfg, seeds=seeds, set_lists=set_list or (),
                                   run_dir=run_dir, resume=resume, progress=progress,
                                   strategy=vectorize)
                     if vectorised else
                     [fit(cfg, run_dir=run_dir, resume=resume, progress=progress)])
        except KeyboardInterrupt:
            where = f" --run-dir {run_dir}" if run_dir is not None else " --run-dir <the run>"
            err.print(Text(f"interrupted; continue from the last checkpoint with: disentkit "
                           f"train{where} --resume (and the same flags)", style="yellow"),
                      soft_wrap=True)
            raise typer.Exit(130) from None
        for path in paths:
            out.print(f"Trained model: {RunDir(path).weights.resolve()} "
                      f"(run directory {path})", soft_wrap=True)
            if evaluate:  # members differ in seed and loss weights, not in eval settings
                ev = cfg.eval
                _run_evaluation(path, n_samples=ev.n_samples, metrics=ev.metrics,
                                mode=ev.mode, seed=ev.seed, batch_size=ev.batch_size,
                                n_bootstrap=ev.n_bootstrap, baselines=ev.baselines,
                                options=ev.options)
            # --- the HTML report (disentkit.cli.report), unless --no-report
            if report:
                run_report_if_installed(path)
            # --- scores and figures to the run's trackers (loggers section), if any
            log_to_trackers(path, scores=evaluate, figures=report)


def evaluate_command(
    run: Annotated[
        Path, typer.Argument(help="A finished run directory.", show_default=False)
    ],
    n_samples: Annotated[
        int | None,
        typer.Option(help="Samples for the metrics (default: the run's eval.n_samples).",
                     show_default=False),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option("--metrics", "-m", metavar="NAMES",
                     help="Comma-separated metric names, or 'all' (default: the run's "
                     "eval.metrics, else the default suite).", show_default=False),
    ] = None,
    mode: Annotated[
        Mode | None,
        typer.Option(help="Metric settings (default: the run's eval.mode).", show_default=False),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of samples and metrics (default: the run's eval.seed).",
                     show_default=False),
    ] = None,
    n_bootstrap: Annotated[
        int | None,
        typer.Option(help="Bootstrap replicates for confidence intervals (default: the "
                     "run's eval.n_bootstrap).", show_default=False),
    ] = None,
    baselines: Annotated[
        bool | None,
        typer.Option("--baselines/--no-baselines",
                     help="Also score the factors themselves and random latents (default: "
                     "the run's eval.baselines).", show_default=False),
    ] = None,
    report: Annotated[
        bool,
        typer.Option("--report/--no-report",
                     help=f"Write RUN/{REPORT_NAME} (config, scores, figures) at the end."),
    ] = True,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Score a trained run with the metric suite; writes RUN/metrics.json and (unless
    --no-report) RUN/report.html, and logs them to the run's trackers."""
    with run_errors(debug):
        require("train", what="disentkit evaluate")
        from disentkit.train.config import EvalConfig, RunConfig

        if not run.is_dir():
            raise FileNotFoundError(f"no run directory at {str(run)!r}")
        defaults = EvalConfig()
        config_path = RunDir(run).config
        if config_path.is_file():
            defaults = RunConfig.from_dict(
                json.loads(config_path.read_text(encoding="utf-8")), check_names=False
            ).eval
        names = parse_metric_list(metrics) if metrics is not None else defaults.metrics
        _run_evaluation(
            run,
            n_samples=defaults.n_samples if n_samples is None else n_samples,
            metrics=names,
            mode=defaults.mode if mode is None else mode,
            seed=defaults.seed if seed is None else seed,
            batch_size=defaults.batch_size,
            n_bootstrap=defaults.n_bootstrap if n_bootstrap is None else n_bootstrap,
            baselines=defaults.baselines if baselines is None else baselines,
            # the run's eval.options, for the metrics scored now
            options={m: o for m, o in defaults.options.items()
                     if names is None or m in names},
        )
        # --- the HTML report (disentkit.cli.report), unless --no-report
        if report:
            run_report_if_installed(run)
        log_to_trackers(run, figures=report)
