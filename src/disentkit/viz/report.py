"""One self-contained HTML page per run: :func:`write_report` writes ``RUN/report.html``.

The page needs nothing but the file: CSS is inline, every figure is embedded as a base64
``data:`` URI, no script runs and no URL outside the page is referenced, so it opens from
disk, offline, and can be mailed or archived on its own. A reader takes it in from the
top down:

- the run's title (model, dataset, run name);
- a summary: one row per representation with the headline scores
  (:data:`HEADLINE_SCORES`: InfoM, InfoE, InfoC, DCI-D, MIG), each with its random
  baseline beside it (a dash, and how to compute them, when ``metrics.json`` has none);
  active latents and reconstruction errors;
- every PNG/GIF in ``RUN/figures``, each with a caption: traversals, the labelled
  reconstructions, samples, the animated traversals, the MI and DCI heatmaps, the scores
  during training, training curves, then the score charts and the rest;
- folded (``<details>``, no script): the table of every score from ``metrics.json`` (per
  representation kind, each score with its metric ID, its bootstrap interval and its
  random / ground-truth baselines when present), and the resolved ``config.json``.

Every string from the run (names, config values, metric IDs, file names) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from disentkit._atomic import atomic_write
from disentkit._validation import DisentkitWarning
from disentkit._version import __version__
from disentkit.metrics import score_label
from disentkit.rundir import (
    CONFIG_NAME,
    FIGURES_DIR,
    METRICS_NAME,
    MODEL_JSON_NAME,
    REPORT_NAME,
    RunDir,
    read_json,
)

__all__ = ["HEADLINE_SCORES", "REPORT_NAME", "write_report"]

#: File signatures of the images a report embeds, with their MIME types.
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF87a", "image/gif"),
                (b"GIF89a", "image/gif"))
#: Images narrower than this (CSS pixels) are shown enlarged, up to 4×.
_SMALL_WIDTH = 600
#: Baseline columns, in the order shown.
_BASELINES = ("random", "ground_truth")
#: The summary's scores: ``(key in metrics.json, label)``, in the order shown; the labels
#: are the metrics' own (:func:`disentkit.metrics.score_label`).
HEADLINE_SCORES: tuple[tuple[str, str], ...] = tuple(
    (key, score_label(key)) for key in ("infomec.infom", "infomec.infoe", "infomec.infoc",
                                        "dci.disentanglement", "mig"))
#: Captions of known figures, by file-name prefix (the first that matches), in the order
#: the page shows them: the pictures of what the model does, then its scores.
_CAPTIONS: tuple[tuple[str, str], ...] = (
    ("traversal", "Latent traversals: each row sweeps one latent (codebook values for "
                  "quantized latents, quantiles of its marginal otherwise) from a seed image; "
                  "latents ordered by activity, passive ones marked."),
    ("reconstruction", "Reconstructions: the row labelled \"input\" holds the input images, "
                       "the row labelled \"reconstruction\" below it their reconstructions "
                       "from the deterministic code."),
    ("sample", "Random samples from the model's prior."),
    ("animated_traversal", "Latent traversals, animated: frame t shows each latent (rows) at "
                           "its t-th swept value for each seed image (columns); passive "
                           "latents marked."),
    ("mi", "Mutual information between latents (rows) and factors (columns)."),
    ("dci", "DCI importance of each latent (rows) for each factor (columns)."),
    ("training_score", "Scores during training (eval.every): each score of the model's "
                       "default representation on a fixed evaluation set, against the step."),
    ("training", "Training curves from the run's log."),
    ("curve", "Training curves from the run's log."),
    ("factor_score", "Scores per factor with their confidence intervals, beside the random "
                     "and ground-truth baselines."),
    ("score", "Scores with their confidence intervals, beside the random and ground-truth "
              "baselines."),
    ("codebook", "Codebook usage: how often each code value is used, per latent."),
    ("active", "Active and passive latents (mean vs sampled representation)."),
)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5em; color: #1d1d1f; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.dim, span.dim { color: #666; }
table.summary th.base, table.summary td.base { color: #666; font-size: 0.9em; }
table.summary td.num { font-size: 1.05em; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.95em; }
details { margin: 0.6em 0; }
summary { cursor: pointer; font-weight: 600; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figure img.pixels { image-rendering: pixelated; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.3em; }
p.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
"""


# --------------------------------------------------------------------------- reading


def _image_mime(data: bytes) -> str | None:
    for magic, mime in _IMAGE_TYPES:
        if data.startswith(magic):
            return mime
    return None


def _image_size(data: bytes, mime: str) -> tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR chunk or a GIF's logical screen descriptor."""
    if mime == "image/png" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if mime == "image/gif" and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return 0, 0


def _figure_key(name: str) -> str:
    """The name captions and order key on: the file's stem, lower case; an animated
    traversal (a GIF) is ``animated_<stem>``, shown after the still pictures of the model."""
    stem, _, suffix = name.lower().rpartition(".")
    if suffix == "gif" and stem.startswith("traversal"):
        return f"animated_{stem}"
    return stem


def _caption(name: str) -> str:
    stem = _figure_key(name)
    for prefix, caption in _CAPTIONS:
        if stem.startswith(prefix):
            kind = stem.removeprefix(prefix).lstrip("s").strip("_-")
            if prefix == "score" and kind:  # one chart per representation kind
                caption = f"{caption[:-1]} ({kind.replace('_', ' ')} representation)."
            return caption
    return stem.replace("_", " ").replace("-", " ").capitalize() + "."


def _figure_order(path: Path) -> tuple[int, str, bool]:
    """Known figures in the order of ``_CAPTIONS``, others after; a PNG before its GIF."""
    stem = _figure_key(path.name)
    rank = next((i for i, (prefix, _) in enumerate(_CAPTIONS) if stem.startswith(prefix)),
                len(_CAPTIONS))
    return rank, stem, path.suffix.lower() != ".png"


def _figure_files(run_dir: Path) -> list[Path]:
    folder = RunDir(run_dir).figures
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower() in (".png", ".gif")]
    return sorted(files, key=_figure_order)


def _render_figures(run_dir: Path, progress: Callable[[str], None] | None) -> str | None:
    """Render the run's figures; return a note for the page when that was not possible."""
    try:
        from disentkit.viz.figures import render_run_figures
    except ImportError as exc:
        return f"figures were not rendered: disentkit.viz.figures is unavailable ({exc})"
    if not RunDir(run_dir).weights.is_file():
        return "figures were not rendered: the run has no saved model yet"
    try:
        render_run_figures(run_dir, progress=progress)
    except Exception as exc:  # a broken figure must not cost the scores their page
        message = f"figures could not be rendered: {type(exc).__name__}: {exc}"
        warnings.warn(message, DisentkitWarning, stacklevel=3)
        return message
    return None


# --------------------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan"
        return f"{value:.4g}" if abs(value) >= 1000 or (value and abs(value) < 1e-3) else (
            f"{value:.3f}")
    return str(value)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _page(title: str, heading: str, about: list[str], sections: list[str],
          css: str = _CSS) -> str:
    """A self-contained HTML page: ``title`` and ``heading`` are escaped; ``about`` (one
    line of meta, joined by ``·``) and ``sections`` are HTML already."""
    return "\n".join([
        "<!DOCTYPE html>",
        "<html lang=\"en\">",
        "<head>",
        "<meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>{_e(title)}</title>",
        f"<style>{css}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(heading)}</h1>",
        f"<p class=\"meta\">{' · '.join(about)}</p>",
        *sections,
        "</body>",
        "</html>",
        "",
    ])


def _config_section(config: Mapping[str, Any] | None) -> str:
    if config is None:
        return f"<h2>Configuration</h2>\n<p>No <code>{CONFIG_NAME}</code> in this run.</p>"
    rows = "\n".join(
        f"<tr><td><code>{_e(k)}</code></td><td><code>{_e(json.dumps(v))}</code></td></tr>"
        for k, v in _flatten(config)
    )
    return (
        "<h2>Configuration</h2>\n<details>\n<summary>Resolved config "
        f"(<code>{CONFIG_NAME}</code>, every default written out)</summary>\n"
        f"<table>\n<tr><th>key</th><th>value</th></tr>\n{rows}\n</table>\n</details>"
    )


def _score_rows(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flat ``evaluate(...).to_dict()`` scores → one row per score."""
    ids = {k[: -len(".metric_id")]: v for k, v in scores.items() if k.endswith(".metric_id")}
    rows = []
    for key, value in scores.items():
        if (key.endswith((".metric_id", ".ci_low", ".ci_high")) or key.startswith("baseline.")):
            continue
        metric, _, score = key.partition(".")
        rows.append({
            "key": key,
            "metric": metric,
            "score": score or "score",
            "metric_id": ids.get(metric, ""),
            "value": value,
            "ci": (scores.get(f"{key}.ci_low"), scores.get(f"{key}.ci_high")),
            "baselines": {b: scores.get(f"baseline.{b}.{key}") for b in _BASELINES},
        })
    return rows


def _representations(metrics: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(kind, flat scores)`` per representation of ``metrics.json``, in its order."""
    reps = metrics.get("representations") or {}
    if not isinstance(reps, Mapping):
        return []
    out = []
    for kind, entry in reps.items():
        scores = entry.get("scores", {}) if isinstance(entry, Mapping) else {}
        out.append((str(kind), scores if isinstance(scores, Mapping) else {}))
    return out


def _about_scores(metrics: Mapping[str, Any]) -> str:
    about = [f"{k.replace('_', ' ')} {_num(metrics[k])}"
             for k in ("mode", "n_samples", "seed") if metrics.get(k) is not None]
    step = (metrics.get("model") or {}).get("step")
    if step is not None:
        about.append(f"model at step {_num(step)}")
    return f"<p class=\"meta\">{_e(', '.join(about))}</p>" if about else ""


def _summary_section(metrics: Mapping[str, Any] | None, run_name: str) -> str:
    """The page's opening: headline scores per representation beside their random
    baselines, active latents and reconstruction errors."""
    head = "<h2 id=\"summary\">Summary</h2>"
    if metrics is None:
        return (f"{head}\n<p class=\"note\">Not evaluated yet: run "
                f"<code>disentkit evaluate {_e(run_name)}</code> to score this run.</p>")
    reps = _representations(metrics)
    if not any(scores for _, scores in reps):
        return f"{head}\n<p class=\"note\"><code>{METRICS_NAME}</code> holds no scores.</p>"
    shown = [(key, label) for key, label in HEADLINE_SCORES
             if any(key in scores for _, scores in reps)]
    missing = [label for key, label in HEADLINE_SCORES if (key, label) not in shown]
    parts = [head, _about_scores(metrics)]
    if shown:
        has_baselines = any(f"baseline.random.{key}" in scores
                            for _, scores in reps for key, _ in shown)
        top = "".join(f"<th colspan=\"2\">{_e(label)}</th>" for _, label in shown)
        sub = "".join("<th>score</th><th class=\"base\">random</th>" for _ in shown)
        lines = ["<table class=\"summary\">",
                 f"<tr><th rowspan=\"2\">representation</th>{top}</tr>", f"<tr>{sub}</tr>"]
        for kind, scores in reps:
            cells = [f"<td>{_e(kind)}</td>"]
            for key, _ in shown:
                base = scores.get(f"baseline.random.{key}")
                cells += [f"<td class=\"num\"><b>{_e(_num(scores.get(key)))}</b></td>",
                          f"<td class=\"num base\">{_e(_num(base))}</td>"]
            lines.append("<tr>" + "".join(cells) + "</tr>")
        lines.append("</table>")
        parts += lines
        if has_baselines:
            parts.append("<p class=\"meta\">Random: the same metric on random latents of "
                         "the same shape, the level a representation that knows nothing "
                         "about the factors reaches (not 0 for InfoM and InfoC).</p>")
        else:
            parts.append("<p class=\"note\">No random baselines in "
                         f"<code>{METRICS_NAME}</code>: run <code>disentkit evaluate "
                         f"{_e(run_name)} --baselines</code> to score random latents beside "
                         "the model's.</p>")
    if missing:
        parts.append(f"<p class=\"meta\">Not computed: {_e(', '.join(missing))}.</p>")
    parts += [_active(metrics), _reconstruction(metrics)]
    parts.append("<p class=\"meta\">Every score, with its interval, baselines and metric "
                 "ID: <i>All scores</i>, folded below the figures.</p>")
    return "\n".join(p for p in parts if p)


def _scores_section(metrics: Mapping[str, Any] | None) -> str:
    """The full table of every score, folded: the page opens with its summary."""
    if metrics is None:
        return ""
    head = "<h2 id=\"all-scores\">All scores</h2>"
    reps = _representations(metrics)
    table: list[tuple[str, dict[str, Any]]] = []
    for kind, scores in reps:
        table += [(kind, row) for row in _score_rows(scores)]
    if not table:
        return ""
    several = len(reps) > 1
    has_ci = any(r["ci"][0] is not None for _, r in table)
    baselines = [b for b in _BASELINES if any(r["baselines"][b] is not None for _, r in table)]
    cols = (["representation"] if several else []) + ["metric", "score", "value"]
    confidence = metrics.get("confidence")
    if has_ci:
        cols.append(f"{confidence:.0%} CI" if isinstance(confidence, float) else "CI")
    cols += [f"{b.replace('_', '-')} baseline" for b in baselines] + ["metric ID"]
    lines = ["<table class=\"scores\">", "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in cols)
             + "</tr>"]
    for kind, r in table:
        cells = [f"<td>{_e(kind)}</td>"] if several else []
        cells += [f"<td>{_e(r['metric'])}</td>", f"<td>{_e(r['score'])}</td>",
                  f"<td class=\"num\"><b>{_e(_num(r['value']))}</b></td>"]
        if has_ci:
            lo, hi = r["ci"]
            ci = "" if lo is None else f"{_num(lo)} – {_num(hi)}"
            cells.append(f"<td class=\"num\">{_e(ci)}</td>")
        cells += [f"<td class=\"num dim\">{_e(_num(r['baselines'][b]))}</td>" for b in baselines]
        cells.append(f"<td><code>{_e(r['metric_id'])}</code></td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    label = (f"Every score of {'every representation' if several else 'the representation'}"
             f" ({len(table)} rows), with {'intervals, ' if has_ci else ''}"
             f"{'baselines and ' if baselines else ''}metric IDs")
    return "\n".join([head, "<details>", f"<summary>{_e(label)}</summary>",
                      _about_scores(metrics), *lines, "</details>"])


def _reconstruction(metrics: Mapping[str, Any]) -> str:
    rec = metrics.get("reconstruction")
    if not isinstance(rec, Mapping):
        return ""
    rows = []
    for name, label in (("bce", "binary cross-entropy"), ("mse", "squared error")):
        per_image, per_pixel = rec.get(f"{name}_per_image"), rec.get(f"{name}_per_pixel")
        if per_image is None and per_pixel is None:
            continue
        rows.append(f"<tr><td>{_e(label)}</td><td class=\"num\">{_e(_num(per_image))}</td>"
                    f"<td class=\"num\">{_e(_num(per_pixel))}</td></tr>")
    if not rows:
        return ""
    definition = rec.get("definition")
    note = f"<p class=\"meta\">{_e(definition)}</p>" if definition else ""
    return ("<h3>Reconstruction error</h3>\n<table>\n<tr><th>error</th><th>per image</th>"
            "<th>per pixel</th></tr>\n" + "\n".join(rows) + f"\n</table>\n{note}")


def _active(metrics: Mapping[str, Any]) -> str:
    active = metrics.get("active_latents")
    if not isinstance(active, Mapping) or "active" not in active:
        return ""
    flags = list(active.get("active") or [])
    which = ", ".join(str(i) for i, a in enumerate(flags) if a) or "none"
    metric_id = active.get("metric_id", "")
    return (f"<p>Active latents: {_e(active.get('n_active', sum(map(bool, flags))))} of "
            f"{len(flags)} (latents {_e(which)}; <code>{_e(metric_id)}</code>).</p>")


def _figures_section(files: list[Path], note: str | None) -> str:
    parts = ["<h2 id=\"figures\">Figures</h2>"]
    if note:
        parts.append(f"<p class=\"note\">{_e(note)}</p>")
    shown = 0
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"could not read figure {str(path)!r}: {exc}") from None
        mime = _image_mime(data)
        if mime is None:
            parts.append(f"<p class=\"note\">{_e(path.name)} is not a PNG or GIF image; "
                         "left out.</p>")
            continue
        caption = _caption(path.name)
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        width, height = _image_size(data, mime)
        # small pixel grids (traversals of 64×64 images) shown enlarged, without blurring
        scale = min(4, max(1, _SMALL_WIDTH // width)) if width else 1
        size = f" width=\"{width * scale}\" height=\"{height * scale}\"" if width else ""
        pixels = " class=\"pixels\"" if scale > 1 else ""
        key = _figure_key(path.name)
        parts.append(f"<figure id=\"fig-{_e(key)}\">\n<img src=\"{uri}\"{size}{pixels} "
                     f"alt=\"{_e(caption)}\">\n<figcaption>{_e(caption)} "
                     f"<span class=\"dim\">(<code>{FIGURES_DIR}/{_e(path.name)}</code>)</span>"
                     "</figcaption>\n</figure>")
        shown += 1
    if not shown and not note:
        parts.append(f"<p>No figures in <code>{FIGURES_DIR}/</code>.</p>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- the page


def write_report(
    run_dir: str | os.PathLike[str],
    *,
    render_figures: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``run_dir/report.html``: one self-contained page about the run.

    Args:
        run_dir: a run directory (``config.json`` and/or ``model.json``; ``metrics.json``
            once evaluated; ``figures/`` once rendered).
        render_figures: first (re)render ``run_dir/figures`` with
            :func:`disentkit.viz.figures.render_run_figures` when the run has a saved model;
            ``False`` embeds whatever PNG/GIF files are already there.
        progress: called with a short label before each long step.

    Returns:
        the path of the report, written atomically (a reader never sees half a page).

    Raises:
        FileNotFoundError: ``run_dir`` is not a directory.
        ValueError: ``run_dir`` holds no run (neither ``config.json`` nor ``model.json``),
            or one of its files cannot be read.

    Example:
        >>> import json, tempfile
        >>> run = Path(tempfile.mkdtemp()) / "demo"
        >>> run.mkdir()
        >>> _ = (run / "config.json").write_text(json.dumps({"model": "qlae", "data": "x"}))
        >>> page = write_report(run, render_figures=False).read_text()
        >>> "qlae" in page and "Not evaluated yet" in page
        True
    """
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"no run directory at {str(run_dir)!r}")
    run = RunDir(path)
    config_path, model_path = run.config, run.model_json
    if not config_path.is_file() and not model_path.is_file():
        raise ValueError(f"{str(run_dir)!r} is not a run directory: it holds neither "
                         f"{CONFIG_NAME} nor {MODEL_JSON_NAME}")
    config = read_json(config_path) if config_path.is_file() else None
    info = read_json(model_path) if model_path.is_file() else {}
    metrics = read_json(run.metrics) if run.metrics.is_file() else None

    note = None
    if render_figures:
        if progress is not None:
            progress("figures")
        note = _render_figures(path, progress)
    if progress is not None:
        progress("report")

    model = (config or {}).get("model") or info.get("model") or "unknown model"
    data = (config or {}).get("data") or info.get("data") or "unknown dataset"
    name = path.resolve().name
    about = [f"run <code>{_e(name)}</code>"]
    step = info.get("step")
    if step is not None:
        about.append(f"trained {_e(_num(step))} steps")
    about.append(f"disentkit {_e(__version__)}")
    title = f"{model} on {data} — {name}"
    page = _page(title, f"{model} on {data}", about, [
        _summary_section(metrics, str(run_dir)),
        _figures_section(_figure_files(path), note),
        _scores_section(metrics),
        _config_section(config),
    ])

    return atomic_write(path / REPORT_NAME, lambda tmp: tmp.write_text(page, encoding="utf-8"))
