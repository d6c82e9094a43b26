"""The HTML report: a valid, self-contained page with the config, scores and figures."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import sys
import types
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from disentkit._validation import DisentkitWarning
from disentkit.cli import app
from disentkit.train import evaluate_run, fit
from disentkit.viz.report import REPORT_NAME, write_report
from tests.train import TINY, tiny_config

runner = CliRunner()
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


pytestmark = pytest.mark.usefixtures("tiny_model")


def add_figures(run) -> None:
    """A small PNG and a two-frame GIF in ``run/figures``, as the figure renderer leaves."""
    folder = run / "figures"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(
        folder / "zz_extra_plot.png")
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (30, 220)]
    frames[0].save(folder / "zz_extra_anim.gif", save_all=True, append_images=frames[1:],
                   duration=100, loop=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained and evaluated run (a few seconds), with two figure files."""
    path = fit(tiny_config(steps=4, log_every=2, checkpoint_every=4,
                           eval={"every": 2, "every_n_samples": 100, "every_metrics": ["mig"]}),
               run_dir=tmp_path_factory.mktemp("report") / "tiny-run", progress=False)
    evaluate_run(path, n_samples=100, metrics=["mig", "dci"], mode="fast", seed=0)
    add_figures(path)
    return path


class _Checker(HTMLParser):
    """Collects tags, checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs)
        self.urls += [v or "" for k, v in attrs.items() if k in ("src", "href", "action")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"end tag of void element </{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [], checker.errors
    assert checker.stack == [], f"unclosed elements: {checker.stack}"
    assert page.startswith("<!DOCTYPE html>")
    return checker


def decode_image(uri: str) -> Image.Image:
    match = re.fullmatch(r"data:(image/(?:png|gif));base64,([A-Za-z0-9+/=]+)", uri)
    assert match, uri[:60]
    image = Image.open(io.BytesIO(base64.b64decode(match.group(2), validate=True)))
    image.load()
    assert image.format == match.group(1).split("/")[1].upper()
    assert image.width > 0 and image.height > 0
    return image


def test_report_is_valid_self_contained_html_with_scores_config_and_figures(run):
    path = write_report(run, render_figures=False)
    assert path == run / REPORT_NAME
    page = path.read_text(encoding="utf-8")
    checker = parse(page)
    text = " ".join(" ".join(checker.text).split())

    # title: model, dataset, run name
    assert f"{TINY} on xyobject_tiny" in text and "tiny-run" in text
    # score table: metric IDs and scores of both representation kinds, reconstruction
    saved = json.loads((run / "metrics.json").read_text())
    for kind in ("mean", "sampled"):
        scores = saved["representations"][kind]["scores"]
        assert f"{scores['mig']:.3f}" in text
        assert f"{scores['dci.completeness']:.3f}" in text
    assert "mig/hist20@1" in text and "dci/binned@1" in text
    assert "representation" in text and "sampled" in text and "informativeness_test" in text
    assert "Reconstruction error" in text and "binary cross-entropy" in text
    assert "Active latents:" in text
    # resolved config, every value
    config = json.loads((run / "config.json").read_text())
    assert "model_options.n_latents" in text and "checkpoint_every" in text
    assert f'"{config["data"]}"' in text and str(config["batch_size"]) in text
    # self-contained: no external URL, every image an embedded PNG/GIF that decodes
    assert not re.search(r"https?://", page)
    assert all(url.startswith("data:image/") for url in checker.urls), checker.urls
    assert "script" not in checker.tags and "link" not in checker.tags
    srcs = [img["src"] for img in checker.imgs]
    formats = sorted(decode_image(src).format for src in srcs)
    assert formats.count("PNG") >= 1 and formats.count("GIF") >= 1
    assert len(srcs) == len(list((run / "figures").glob("*.[pg][ni][gf]")))
    assert all(img.get("alt") for img in checker.imgs)
    assert text.count("figures/zz_extra_") == 2  # each figure captioned with its file
    # written atomically: nothing left beside it
    assert [p.name for p in run.iterdir() if p.name.startswith(".") and p.name != ".lock"] == []


def test_rendering_figures_embeds_every_figure_file(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "copy")
    page = write_report(copy, render_figures=True).read_text(encoding="utf-8")
    checker = parse(page)
    files = [p for p in (copy / "figures").iterdir() if p.suffix in (".png", ".gif")]
    assert len(checker.imgs) == len(files) >= 2
    for img in checker.imgs:
        decode_image(img["src"])
    assert not re.search(r"https?://", page)
    # the run was scored during training: its scores against the step, with their caption
    assert (copy / "figures" / "training_scores.png").is_file()
    assert "Scores during training (eval.every)" in " ".join(checker.text)


def _fake_figures(monkeypatch, render) -> None:
    module = types.ModuleType("disentkit.viz.figures")
    module.render_run_figures = render
    monkeypatch.setitem(sys.modules, "disentkit.viz.figures", module)


def test_figures_are_rendered_first_with_progress(run, tmp_path, monkeypatch):
    copy = shutil.copytree(run, tmp_path / "copy")
    calls = []

    def render(run_dir, *, n_images=8, seed=0, progress=None):
        calls.append(run_dir)
        progress("traversals")
        out = run_dir / "figures" / "traversals.png"
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(out)
        return {"traversals": out}

    _fake_figures(monkeypatch, render)
    labels: list[str] = []
    page = write_report(copy, progress=labels.append).read_text(encoding="utf-8")
    assert calls == [copy] and labels == ["figures", "traversals", "report"]
    checker = parse(page)
    assert len(checker.imgs) == 3 and "Latent traversals" in " ".join(checker.text)
    assert "figures/traversals.png" in page


def test_a_failing_figure_renderer_leaves_a_note_and_a_warning(run, tmp_path, monkeypatch):
    copy = shutil.copytree(run, tmp_path / "copy")

    def render(run_dir, *, n_images=8, seed=0, progress=None):
        raise RuntimeError("no <display>")

    _fake_figures(monkeypatch, render)
    with pytest.warns(DisentkitWarning, match="figures could not be rendered"):
        page = write_report(copy).read_text(encoding="utf-8")
    checker = parse(page)
    assert "RuntimeError: no &lt;display&gt;" in page and "mig/hist20@1" in page
    assert len(checker.imgs) == 2  # the figures already there are still shown


def test_run_without_metrics_says_how_to_evaluate(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "qlae", "data": "shapes3d",
                                                 "steps": 7}))
    page = write_report(run, render_figures=True).read_text(encoding="utf-8")
    checker = parse(page)
    text = " ".join(" ".join(checker.text).split())
    assert "Not evaluated yet" in text and f"disentkit evaluate {run}" in text
    assert "qlae on shapes3d" in text and '"shapes3d"' in text and "steps" in text
    assert "figures were not rendered" in text and checker.imgs == []


def test_intervals_baselines_and_escaping(tmp_path):
    run = tmp_path / "r&d"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(
        {"model": "<b>m</b>", "data": "d\"x", "note": "<script>alert(1)</script>"}))
    scores = {"mig": 0.5, "mig.ci_low": 0.41, "mig.ci_high": 0.58,
              "baseline.random.mig": 0.02, "baseline.ground_truth.mig": 0.97,
              "mig.metric_id": "mig/hist20@1", "sap": None, "sap.metric_id": "sap<1>"}
    (run / "metrics.json").write_text(json.dumps({
        "confidence": 0.9, "mode": "reference", "n_samples": 10,
        "representations": {"z": {"scores": scores}}}))
    page = write_report(run, render_figures=False).read_text(encoding="utf-8")
    checker = parse(page)
    assert "script" not in checker.tags and "<b>m</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "sap&lt;1&gt;" in page
    text = " ".join(" ".join(checker.text).split())
    assert "90% CI" in text and "0.410 – 0.580" in text
    assert "random baseline" in text and "0.020" in text
    assert "ground-truth baseline" in text and "0.970" in text
    full = _Tables(page).table("scores")
    assert "representation" not in full["rows"][0]  # one kind: no representation column
    assert full["rows"][1][:3] == ["mig", "score", "0.500"]
    assert "0.500" in text and "—" in text  # a missing score shown as a dash


def test_cli_report_writes_the_page(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "copy")
    (copy / REPORT_NAME).unlink(missing_ok=True)
    result = runner.invoke(app, ["report", str(copy), "--no-figures"])
    assert result.exit_code == 0, result.output
    assert (copy / REPORT_NAME).is_file()
    assert str((copy / REPORT_NAME).resolve()) in " ".join(result.stdout.split())
    parse((copy / REPORT_NAME).read_text(encoding="utf-8"))


def test_evaluate_writes_the_report_unless_told_not_to(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "copy")
    (copy / REPORT_NAME).unlink(missing_ok=True)
    args = ["evaluate", str(copy), "--n-samples", "50", "--metrics", "mig"]
    result = runner.invoke(app, [*args, "--no-report"])
    assert result.exit_code == 0, result.output
    assert not (copy / REPORT_NAME).exists()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "mig/hist20@1" in (copy / REPORT_NAME).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no run directory at"),
        ("empty", "is not a run directory"),
        ("bad_json", "is not valid JSON"),
    ],
)
def test_cli_report_errors_are_one_red_paragraph_and_exit_2(tmp_path, setup, message):
    run = tmp_path / "run"
    if setup != "missing":
        run.mkdir()
    if setup == "bad_json":
        (run / "config.json").write_text("{}")
        (run / "metrics.json").write_text("{not json")
    result = runner.invoke(app, ["report", str(run), "--no-figures"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.stderr and message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert not (run / REPORT_NAME).exists()


# --------------------------------------------------------------------------- the page's order


class _Tables(HTMLParser):
    """Each table's class, its rows of cell texts, and the ``<details>`` around it; the page's
    ``<h2>`` headings and first ``<figure>`` in document order."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.order: list[str] = []  # "h2:<text>", "figure", "table:<class>", "details"
        self.details: list[dict[str, str | None]] = []
        self._open: list[dict] = []  # tables being read
        self._cell: list[str] | None = None
        self._h2: list[str] | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "details":
            self.details.append(attrs)
            self.order.append("details")
        elif tag == "table":
            table = {"class": attrs.get("class"), "rows": [],
                     "folded": [d for d in self.details if d is not None]}
            self.tables.append(table)
            self._open.append(table)
            self.order.append(f"table:{attrs.get('class')}")
        elif tag == "tr" and self._open:
            self._open[-1]["rows"].append([])
        elif tag in ("td", "th") and self._open:
            self._cell = []
            span = int(attrs.get("colspan") or 1)
            self._open[-1]["rows"][-1] += [None] * (span - 1)
        elif tag == "h2":
            self._h2 = []
        elif tag == "figure":
            self.order.append("figure")

    def handle_endtag(self, tag):
        if tag == "details":
            self.details.pop()
        elif tag == "table":
            self._open.pop()
        elif tag in ("td", "th") and self._cell is not None:
            self._open[-1]["rows"][-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        elif tag == "h2" and self._h2 is not None:
            self.order.append("h2:" + " ".join(" ".join(self._h2).split()))
            self._h2 = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._h2 is not None:
            self._h2.append(data)

    def table(self, cls: str) -> dict:
        found = [t for t in self.tables if t["class"] == cls]
        assert len(found) == 1, [t["class"] for t in self.tables]
        return found[0]


HEADLINE = {"infomec.infom": "InfoM", "infomec.infoe": "InfoE", "infomec.infoc": "InfoC",
            "dci.disentanglement": "DCI-D", "mig": "MIG"}
OTHER = ("dci.completeness", "dci.informativeness_train", "dci.informativeness_test", "sap")


def _metrics(baselines: bool) -> dict:
    """A QLAE-like ``metrics.json``: three representations, every headline score and more,
    with random and ground-truth baselines when ``baselines``; values seeded at random."""
    rng = np.random.default_rng(16)
    reps = {}
    for kind in ("quantized", "indices", "mean"):
        scores = {}
        for key in (*HEADLINE, *OTHER):
            scores[key] = float(rng.uniform(0.2, 0.9))
            scores[f"{key}.ci_low"], scores[f"{key}.ci_high"] = (scores[key] - 0.05,
                                                                  scores[key] + 0.05)
            if baselines:
                scores[f"baseline.random.{key}"] = float(rng.uniform(0.0, 0.1))
                scores[f"baseline.ground_truth.{key}"] = float(rng.uniform(0.9, 1.0))
        for metric in ("infomec", "dci", "mig", "sap"):
            scores[f"{metric}.metric_id"] = f"{metric}/{kind}@1"
        reps[kind] = {"n_latents": 10, "scores": scores}
    return {"mode": "fast", "n_samples": 1000, "seed": 0, "confidence": 0.95,
            "representations": reps,
            "active_latents": {"active": [True] * 8 + [False] * 2, "n_active": 8,
                               "metric_id": "active/kl@1"},
            "reconstruction": {"bce_per_image": 512.0, "bce_per_pixel": 0.125}}


def _qlae_run(tmp_path, *, baselines: bool) -> tuple:
    run = tmp_path / "qlae-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "qlae", "data": "shapes3d"}))
    metrics = _metrics(baselines)
    (run / "metrics.json").write_text(json.dumps(metrics))
    folder = run / "figures"
    folder.mkdir()
    for name in ("scores_mean", "training_curves", "mi_heatmap", "reconstructions",
                 "training_scores", "dci_importance", "traversals", "codebook_usage"):
        Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(folder / f"{name}.png")
    frames = [Image.fromarray(np.full((20, 30, 3), v, np.uint8)) for v in (40, 200)]
    frames[0].save(folder / "traversals.gif", save_all=True, append_images=frames[1:])
    return run, metrics


def test_summary_opens_the_page_with_random_baselines_beside_the_headline_scores(tmp_path):
    run, metrics = _qlae_run(tmp_path, baselines=True)
    page = write_report(run, render_figures=False).read_text(encoding="utf-8")
    parse(page)
    outline = _Tables(page)
    # summary, then the pictures, then the full table, then the config
    headings = [o for o in outline.order if o.startswith("h2:")]
    assert headings == ["h2:Summary", "h2:Figures", "h2:All scores", "h2:Configuration"]
    first = outline.order.index
    assert first("table:summary") < first("figure") < first("table:scores")
    # one row per representation: each headline score, then its random baseline
    summary = outline.table("summary")
    assert summary["folded"] == []
    top, sub, *rows = summary["rows"]
    labels = [c for c in top[1:] if c is not None]
    assert labels == list(HEADLINE.values())
    assert sub == ["score", "random"] * len(HEADLINE)
    assert [row[0] for row in rows] == list(metrics["representations"])
    for row, entry in zip(rows, metrics["representations"].values(), strict=True):
        scores = entry["scores"]
        expected = []
        for key in HEADLINE:
            expected += [f"{scores[key]:.3f}", f"{scores[f'baseline.random.{key}']:.3f}"]
        assert row[1:] == expected
    text = " ".join(" ".join(parse(page).text).split())
    assert "--baselines" not in text  # no hint: the baselines are there
    assert "Active latents: 8 of 10" in text and "Reconstruction error" in text
    # the pictures in the order a reader wants them
    figures = re.findall(r'<figure id="fig-([^"]+)"', page)
    assert figures == ["traversals", "reconstructions", "animated_traversals", "mi_heatmap",
                       "dci_importance", "training_scores", "training_curves", "scores_mean",
                       "codebook_usage"]
    assert '"input"' in text and '"reconstruction"' in text  # the caption names the rows


def test_the_full_score_table_is_folded_below_the_figures(tmp_path):
    run, metrics = _qlae_run(tmp_path, baselines=True)
    page = write_report(run, render_figures=False).read_text(encoding="utf-8")
    outline = _Tables(page)
    full = outline.table("scores")
    assert len(full["folded"]) == 1 and "open" not in full["folded"][0]  # closed <details>
    n_rows = sum(len(_score_keys(e["scores"])) for e in metrics["representations"].values())
    assert len(full["rows"]) == 1 + n_rows == 1 + 3 * (len(HEADLINE) + len(OTHER))
    assert full["rows"][0] == ["representation", "metric", "score", "value", "95% CI",
                               "random baseline", "ground-truth baseline", "metric ID"]
    ids = {row[-1] for row in full["rows"][1:]}
    assert "infomec/indices@1" in ids and "sap/mean@1" in ids
    assert f"<summary>Every score of every representation ({n_rows} rows)" in page
    # the config is folded too
    config = [t for t in outline.tables if t["class"] is None and t["rows"][0][0] == "key"]
    assert config and config[0]["folded"] and "open" not in config[0]["folded"][0]
    # self-contained: no script, no URL, nothing a browser would fetch or run
    assert "<script" not in page and not re.search(r"\b(?:href|on\w+)=", page)
    assert not re.search(r"https?://|//[a-z]", page)


def _score_keys(scores: dict) -> list[str]:
    return [k for k in scores if not k.startswith("baseline.")
            and not k.endswith((".ci_low", ".ci_high", ".metric_id"))]


def test_without_baselines_the_summary_shows_dashes_and_how_to_get_them(tmp_path):
    run, metrics = _qlae_run(tmp_path, baselines=False)
    page = write_report(run, render_figures=False).read_text(encoding="utf-8")
    text = " ".join(" ".join(parse(page).text).split())
    rows = _Tables(page).table("summary")["rows"][2:]
    assert len(rows) == 3
    for row, entry in zip(rows, metrics["representations"].values(), strict=True):
        assert row[1::2] == [f"{entry['scores'][key]:.3f}" for key in HEADLINE]
        assert row[2::2] == ["—"] * len(HEADLINE)
    assert f"disentkit evaluate {run} --baselines" in text


def test_summary_names_the_headline_scores_a_run_lacks(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "vae", "data": "dsprites"}))
    (run / "metrics.json").write_text(json.dumps({"representations": {"mean": {"scores": {
        "mig": 0.25, "mig.metric_id": "mig/hist20@1", "sap": 0.1}}}}))
    page = write_report(run, render_figures=False).read_text(encoding="utf-8")
    text = " ".join(" ".join(parse(page).text).split())
    top, _, row = _Tables(page).table("summary")["rows"]
    assert [c for c in top[1:] if c] == ["MIG"] and row == ["mean", "0.250", "—"]
    assert "Not computed: InfoM, InfoE, InfoC, DCI-D." in text
