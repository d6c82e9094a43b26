"""The study report: one self-contained page from a synthetic results table."""

from __future__ import annotations

import base64
import io
import math
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import spearmanr

from disentkit._validation import DisentkitWarning
from disentkit.study.report import REPORT_NAME, write_study_report
from disentkit.viz import figures as run_figures
from disentkit.viz import study_figures as sf

SCORES = ("mig", "dci.disentanglement", "dci.informativeness_train", "dci.informativeness_test",
          "infomec.infom", "sap", "modularity", "beta_vae.train_accuracy")
MAIN = [f"score.{s}" for s in SCORES if "train" not in s]
ERROR = "RuntimeError: CUDA out of memory <at step 7>"
VOID = {"br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}


def make_results(
    models: dict[str, tuple[str, list]] | None = None,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    failed: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """A results table as ``disentkit study collect`` writes it: per model, one swept
    hyper-parameter × seeds, seeded random scores with intervals, baselines, metric IDs and
    reconstruction errors; plus one failed run (NaN scores) when ``failed``."""
    if models is None:
        models = {"beta_vae": ("hp.model.beta", [1.0, 4.0]),
                  "qlae": ("hp.model.n_values", [8, 16])}
    rng = np.random.default_rng(seed)
    rows = []
    for model, (hp, values) in models.items():
        for value in values:
            for s in seeds:
                n = len(rows)
                row = {"model_num": n, "run_name": f"run-{n:05d}", "run_dir": f"runs/run-{n:05d}",
                       "status": "done", "error": "", "dataset": "xyobject", "model": model,
                       "seed": s, "steps": 200, "train_seconds": float(rng.uniform(5, 9)),
                       "eval_seconds": float(rng.uniform(1, 2)), "representation": "mean"}
                if hp is not None:
                    row[hp] = value
                for key in SCORES:
                    row[f"score.{key}"] = float(rng.uniform())
                row["score.mig.ci_low"] = row["score.mig"] - 0.05
                row["score.mig.ci_high"] = row["score.mig"] + 0.05
                row["baseline.random.mig"] = float(rng.uniform(0, 0.05))
                row["metric_id.mig"] = "mig/hist20@1"
                row["recon.bce_per_pixel"] = float(rng.uniform(0.1, 0.3))
                row["recon.mse_per_pixel"] = float(rng.uniform(0.01, 0.03))
                rows.append(row)
    if failed:
        n = len(rows)
        model, (hp, values) = next(iter(models.items()))
        row = {**{k: v for k, v in rows[0].items() if not k.startswith(("score.", "recon."))},
               "model_num": n, "run_name": f"run-{n:05d}", "run_dir": f"runs/run-{n:05d}",
               "status": "failed", "error": ERROR, "seed": 99, "eval_seconds": math.nan,
               "representation": "", "baseline.random.mig": math.nan}
        if hp is not None:
            row[hp] = values[-1]
        rows.append(row)
    return pd.DataFrame(rows)


def traversal_png(model_num: int) -> bytes:
    """A small traversal grid whose first pixel encodes the run number."""
    image = np.full((12, 20, 3), (model_num * 7) % 256, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def make_study(root, table, *, traversals=None, yaml_name=None, csv=False):
    """A study directory: ``results.parquet`` (or ``.csv``), run folders, and a traversal
    PNG for the runs in ``traversals`` (default: every finished run)."""
    root.mkdir(parents=True, exist_ok=True)
    if csv:
        table.to_csv(root / "results.csv", index=False)
    else:
        table.to_parquet(root / "results.parquet", index=False)
    if yaml_name is not None:
        (root / "study.yaml").write_text(f"name: {yaml_name}\nseeds: 3\n")
    if traversals is None:
        traversals = table.loc[table["status"] == "done", "model_num"].tolist()
    for n, rel in zip(table["model_num"], table["run_dir"], strict=True):
        run = root / rel
        (run / "figures").mkdir(parents=True, exist_ok=True)
        if n in traversals:
            (run / "figures" / "traversals.png").write_bytes(traversal_png(int(n)))
    return root


class Page(HTMLParser):
    """Parses the report: checks nesting, collects images, URLs, figures and text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[dict] = []
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.figures: list[dict] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(attrs)
            if self.figures and "figure" in self.stack:
                self.figures[-1]["img"] = attrs["src"]
        if tag == "figure":
            self.figures.append({**attrs, "img": None})
        self.urls += [v or "" for k, v in attrs.items() if k in ("src", "href", "action")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.chunks.append(data)


def parse(html: str) -> Page:
    page = Page(html)
    assert page.errors == [] and page.stack == [], (page.errors, page.stack)
    assert html.startswith("<!DOCTYPE html>")
    return page


def decode_png(uri: str) -> Image.Image:
    match = re.fullmatch(r"data:image/png;base64,([A-Za-z0-9+/=]+)", uri)
    assert match, uri[:60]
    image = Image.open(io.BytesIO(base64.b64decode(match.group(1), validate=True)))
    image.load()
    assert image.format == "PNG" and image.width > 0 and image.height > 0
    return image


def expected_extremes(table: pd.DataFrame, column: str) -> dict[tuple[str, str], str]:
    """Best and worst finished run of each model by ``column``, computed with pandas."""
    done = table[table["status"] == "done"]
    out = {}
    for model, runs in done.groupby("model"):
        out[(model, "best")] = runs.loc[runs[column].idxmax(), "run_name"]
        out[(model, "worst")] = runs.loc[runs[column].idxmin(), "run_name"]
    return out


def shown_extremes(page: Page) -> dict[tuple[str, str], str]:
    return {(f["data-group"], f["data-rank"]): f["data-run"]
            for f in page.figures if f.get("class") == "traversal"}


# --------------------------------------------------------------------------- the full page


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study of 2 models × 2 values × 3 seeds and a failed run, with its report."""
    table = make_results()
    root = make_study(tmp_path_factory.mktemp("study") / "beta-sweep", table,
                      yaml_name="small_sweep")
    labels: list[str] = []
    path = write_study_report(root, progress=labels.append)
    return {"root": root, "table": table, "path": path, "labels": labels,
            "html": path.read_text(encoding="utf-8")}


def test_report_is_self_contained_and_embeds_every_figure(study):
    assert study["path"] == study["root"] / REPORT_NAME
    html = study["html"]
    page = parse(html)
    assert not re.search(r"https?://|file:", html)
    assert "script" not in page.tags and "link" not in page.tags
    assert page.imgs and all(url.startswith("data:image/png;base64,") for url in page.urls)
    for img in page.imgs:
        decode_png(img["src"])
        assert img.get("alt")
    written = sorted(p.stem for p in (study["root"] / "figures").glob("*.png"))
    assert written == sorted(["score_distributions", "hp_model.beta", "hp_model.n_values",
                              "rank_correlation", "seed_variance", "reconstruction_tradeoff",
                              "paired_vs_qlae_n_values_8"])
    embedded = sorted(f["id"].removeprefix("fig-") for f in page.figures if "id" in f)
    assert embedded == written
    assert all(f["img"] for f in page.figures if "id" in f)
    # a label before each figure, then the page
    assert study["labels"] == ["score distributions", "hyper-parameter model.beta",
                               "hyper-parameter model.n_values", "rank correlations",
                               "seed variance", "reconstruction trade-off", "report"]
    assert [p.name for p in study["root"].iterdir() if p.name.startswith(".")] in ([], [".lock"])


def test_title_counts_and_run_table(study):
    page = parse(study["html"])
    table = study["table"]
    assert "Study small_sweep" in page.text  # from study.yaml, not the folder name
    assert re.search(r"13 runs ?: 12 done, 1 failed, 0 pending", page.text)
    # every run, its hyper-parameter and main scores rounded; diagnostics left out
    done = table[table["status"] == "done"]
    for _, row in done.iterrows():
        assert row["run_name"] in page.text
        for column in ("score.mig", "score.infomec.infom", "score.sap"):
            assert f"{row[column]:.3f}" in page.text
    header = re.search(r"<table class=\"runs\">\s*<tr>(.*?)</tr>", study["html"]).group(1)
    assert "model.beta" in header and "model.n_values" in header and "infomec.infom" in header
    assert "informativeness_train" not in header and "train_accuracy" not in header
    assert "ci_low" not in header
    # the failed run: its error (escaped) in place of its scores
    assert ERROR in page.text and "&lt;at step 7&gt;" in study["html"]
    assert re.search(rf"<tr class=\"failed\">.*run-00012.*colspan=\"{len(MAIN)}\"", study["html"])
    assert "mig/hist20@1" in page.text and "mean" in page.text


def test_paper_table_first_and_the_run_table_folded_at_the_end(study):
    html = study["html"]
    page = parse(html)
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", html)
    assert headings[0].startswith("Mean ± 95 % interval over seeds")  # the paper table
    assert headings[1:] == ["Runs", "Figures", "Traversals of the best and worst runs",
                            "Every run"]
    figures = html.index("<h2>Figures</h2>")
    assert html.index("<table class=\"paper\">") < figures
    assert figures < html.rindex("<figure") < html.index("<table class=\"runs\">")
    # the run table inside a closed <details>, with a summary that says what it holds
    folded = re.search(r"<details>\s*<summary>(.*?)</summary>(.*?)</details>", html, re.S)
    assert folded and "<table class=\"runs\">" in folded.group(2)
    assert folded.group(1) == (f"Every run ({len(study['table'])}): its hyper-parameters, "
                               f"status and {len(MAIN)} scores, or its error")
    assert "<details open" not in html
    # the counts stay near the top, unfolded
    assert html.index("<table class=\"paper\">") < html.index("13 runs") < figures
    assert "script" not in page.tags and not re.search(r"\b(?:href|on\w+)=", html)


def test_best_and_worst_run_of_each_model_by_the_default_primary(study):
    page = parse(study["html"])
    expected = expected_extremes(study["table"], "score.infomec.infom")
    assert shown_extremes(page) == expected
    assert "ranked by score.infomec.infom (higher is better)" in page.text
    # each traversal is that run's own image
    for f in page.figures:
        if f.get("class") == "traversal":
            n = int(f["data-run"].removeprefix("run-"))
            assert decode_png(f["img"]).getpixel((0, 0))[0] == (n * 7) % 256


def test_primary_and_metrics_can_be_chosen(tmp_path):
    table = make_results(failed=False)
    root = make_study(tmp_path / "s", table)
    html = write_study_report(root, results=table, metrics=["mig", "score.sap"],
                              primary="modularity").read_text(encoding="utf-8")
    page = parse(html)
    assert shown_extremes(page) == expected_extremes(table, "score.modularity")
    assert "ranked by score.modularity" in page.text
    header = re.search(r"<table class=\"runs\">\s*<tr>(.*?)</tr>", html).group(1)
    assert "<th>mig</th>" in header and "<th>sap</th>" in header and "infom" not in header
    with pytest.raises(ValueError, match=r"primary score 'nope'.*mig"):
        write_study_report(root, results=table, primary="nope")
    with pytest.raises(ValueError, match="no score 'nope'"):
        write_study_report(root, results=table, metrics=["nope"])


# --------------------------------------------------------------------------- the figures


def test_rank_correlations_match_scipy_and_pandas():
    table = make_results(seed=3)
    done = table[table["status"] == "done"]
    corr = sf.rank_correlations(table)
    assert list(corr.columns) == MAIN and list(corr.index) == MAIN
    reference = spearmanr(done[MAIN].to_numpy()).statistic
    np.testing.assert_allclose(corr.to_numpy(), reference, atol=1e-12)
    pd.testing.assert_frame_equal(corr, done[MAIN].corr(method="spearman"))
    # a constant score: undefined correlation, left blank with a note
    constant = table.assign(**{"score.sap": 0.5})
    corr = sf.rank_correlations(constant, ["mig", "sap", "modularity"])
    assert np.isnan(corr.loc["score.sap"]).all() and np.isnan(corr["score.sap"]).all()
    assert corr.loc["score.mig", "score.modularity"] == pytest.approx(
        spearmanr(done["score.mig"], done["score.modularity"]).statistic)
    fig = sf.rank_correlation_heatmap(constant, ["mig", "sap", "modularity"])
    assert "constant over the finished runs: sap" in fig.axes[0].get_xlabel()
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert len(labels) == 4 and "nan" not in labels  # 2 × 2 defined cells annotated


def test_main_scores_and_their_override():
    table = make_results()
    assert sf.main_scores(table) == MAIN
    assert sf.main_scores(table, ["score.mig", "sap", "mig"]) == ["score.mig", "score.sap"]
    with pytest.raises(ValueError, match="no score 'dci'"):
        sf.main_scores(table, ["dci"])
    with pytest.raises(ValueError, match="at least one"):
        sf.main_scores(table, [])


def test_seed_spread_is_the_std_across_seeds_per_setting():
    table = make_results()
    spread = sf.seed_spread(table, ["mig"])
    assert spread["setting"].tolist() == ["beta_vae: model.beta=1", "beta_vae: model.beta=4",
                                          "qlae: model.n_values=8", "qlae: model.n_values=16"]
    assert spread["n_seeds"].tolist() == [3, 3, 3, 3]  # the failed run is not counted
    done = table[table["status"] == "done"]
    for model, hp in (("beta_vae", "hp.model.beta"), ("qlae", "hp.model.n_values")):
        runs = done[done["model"] == model]
        for value, std in runs.groupby(hp)["score.mig"].std().items():
            label = f"{model}: {hp.removeprefix('hp.')}={sf.format_value(value)}"
            got = spread.loc[spread["setting"] == label, "score.mig"].item()
            assert got == pytest.approx(std)


def test_hyperparameter_figure_only_for_models_that_set_it():
    table = make_results()
    fig = sf.hyperparameter_effects(table, "model.beta", ["mig", "sap"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["beta_vae: mig", "beta_vae: sap"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "4"]
    with pytest.raises(ValueError, match="no hyper-parameter 'lr'"):
        sf.hyperparameter_effects(table, "lr")
    assert sf.reconstruction_tradeoff(table.drop(columns=["recon.bce_per_pixel",
                                                          "recon.mse_per_pixel"])) is None


# --------------------------------------------------------------------------- edge cases


def test_one_model_without_hyperparameters_from_csv(tmp_path):
    table = make_results({"ae": (None, [None])}, failed=False)
    assert not [c for c in table.columns if c.startswith("hp.")]
    root = make_study(tmp_path / "plain", table, csv=True)
    labels: list[str] = []
    html = write_study_report(root, metrics=["mig", "infomec.infom"],
                              progress=labels.append).read_text(encoding="utf-8")
    page = parse(html)
    assert "Study plain" in page.text  # no study.yaml: the folder's name
    assert re.search(r"3 runs ?: 3 done, 0 failed, 0 pending", page.text)
    assert "no hp.* columns" in page.text
    assert not any(label.startswith("hyper-parameter") for label in labels)
    assert shown_extremes(page) == expected_extremes(table, "score.infomec.infom")
    for img in page.imgs:
        decode_png(img["src"])


def test_missing_traversals_are_drawn_or_noted(tmp_path, monkeypatch):
    """Runs without traversals.png: drawn when the run has a model, a note otherwise, and a
    failing renderer leaves a note and a warning, never a broken page."""
    table = make_results({"vae": (None, [None]), "qlae": (None, [None])}, seeds=(0, 1),
                         failed=True)
    root = make_study(tmp_path / "s", table, traversals=[])
    for n in (0, 1, 2):  # vae runs 0-1 and qlae run 2 have a saved model; run 3 none
        (root / "runs" / f"run-{n:05d}" / "model.safetensors").write_bytes(b"weights")
    drawn = []

    def render(run_dir, *, n_images=8, seed=0, progress=None):
        drawn.append(run_dir.name)
        if run_dir.name == "run-00002":
            raise RuntimeError("no <dataset>")
        out = run_dir / "figures" / "traversals.png"
        out.write_bytes(traversal_png(int(run_dir.name[4:])))
        return {"traversals": out}

    monkeypatch.setattr(run_figures, "render_run_figures", render)
    labels: list[str] = []
    with pytest.warns(DisentkitWarning, match="run-00002 could not be drawn"):
        html = write_study_report(root, results=table, metrics=["mig"],
                                  progress=labels.append).read_text(encoding="utf-8")
    page = parse(html)
    assert sorted(drawn) == ["run-00000", "run-00001", "run-00002"]
    assert {"traversals run-00000", "traversals run-00002"} <= set(labels)
    shown = {f["data-run"]: f["img"] for f in page.figures if f.get("class") == "traversal"}
    assert shown.keys() == {"run-00000", "run-00001", "run-00002", "run-00003"}
    assert decode_png(shown["run-00000"]).getpixel((0, 0))[0] == 0
    assert decode_png(shown["run-00001"]).getpixel((0, 0))[0] == 7
    assert shown["run-00002"] is None and shown["run-00003"] is None
    assert "RuntimeError: no &lt;dataset&gt;" in html
    assert "no figures/traversals.png and no saved model" in page.text
    assert "ranked by score.infomec.infom" in page.text  # the first present default
    assert ERROR in page.text


def test_a_study_with_no_finished_run_has_a_page_without_figures(tmp_path):
    table = make_results({"vae": (None, [None])}, seeds=(0,), failed=True)
    table.loc[0, "status"] = "pending"
    table.loc[0, [c for c in table.columns if c.startswith("score.")]] = math.nan
    html = write_study_report(tmp_path / "s", results=table).read_text(encoding="utf-8")
    page = parse(html)
    assert "0 done, 1 failed, 1 pending" in page.text
    assert "No finished runs yet" in page.text and page.imgs == []
    assert "No score to rank the runs by" in page.text


def test_missing_results_say_how_to_build_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"disentkit study run.*disentkit study collect"):
        write_study_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="no study directory"):
        write_study_report(tmp_path / "absent")
    assert not (tmp_path / REPORT_NAME).exists()
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['status'\]"):
        write_study_report(tmp_path, results=make_results().drop(columns=["status"]))


def test_distributions_are_violins_from_enough_runs_per_model():
    from matplotlib.collections import PolyCollection

    few = sf.score_distributions(make_results(), ["mig"])
    many = sf.score_distributions(make_results(seeds=tuple(range(7))), ["mig"])
    assert not any(isinstance(c, PolyCollection) for c in few.axes[0].collections)
    assert sum(isinstance(c, PolyCollection) for c in many.axes[0].collections) == 2
    assert [t.get_text() for t in many.axes[0].get_xticklabels()] == ["beta_vae", "qlae"]
    assert "28 finished runs" in many.get_suptitle()


def test_an_unreadable_study_yaml_falls_back_to_the_folder_name(tmp_path):
    table = make_results({"vae": (None, [None])}, seeds=(0,), failed=True)
    root = tmp_path / "my-study"
    root.mkdir()
    (root / "study.yaml").write_text("name: [unclosed\n")
    html = write_study_report(root, results=table, metrics=["mig"]).read_text(encoding="utf-8")
    assert "<h1>Study my-study</h1>" in html
