"""The paper-style table: means and Student-t intervals over seeds, the best per column,
and the paired (or Welch) comparison with a reference model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from disentkit.study.report import paired_csv_name, write_paper_tables
from disentkit.study.results import _flatten_factor_scores
from disentkit.study.tables import (
    FACTOR_COLUMNS,
    PAIRED_COLUMNS,
    PAPER_COLUMNS,
    factor_table,
    paired_comparison,
    paper_markdown,
    paper_table,
)


def runs(scores: dict[str, dict[str, list[float]]], *, seeds=None, dataset="shapes3d",
         status=None) -> pd.DataFrame:
    """A results table: per model, per score column, one value per seed (0, 1, ...)."""
    rows = []
    for model, columns in scores.items():
        n = len(next(iter(columns.values())))
        model_seeds = (seeds or {}).get(model, list(range(n)))
        for i in range(n):
            row = {"model": model, "dataset": dataset, "seed": model_seeds[i],
                   "status": "done"}
            row.update({f"score.{c}": v[i] for c, v in columns.items()})
            rows.append(row)
    frame = pd.DataFrame(rows)
    if status is not None:
        frame["status"] = status
    return frame


def cell(table: pd.DataFrame, model: str, metric: str) -> pd.Series:
    (index,) = np.flatnonzero((table["model"] == model) & (table["metric"] == metric))
    return table.iloc[index]


def test_means_and_intervals_match_scipy():
    qlae = [0.81, 0.74, 0.90, 0.77]
    ae = [0.52, 0.61, 0.58]
    table = paper_table(runs({"qlae": {"infomec.infom": qlae, "mig": [0.3, 0.2, 0.4, 0.1]},
                              "ae": {"infomec.infom": ae, "mig": [0.1, 0.3, 0.2]}}))
    assert list(table.columns) == list(PAPER_COLUMNS)
    assert list(table["metric"]) == ["infomec.infom", "mig"] * 2  # the paper's order
    for model, values in (("qlae", qlae), ("ae", ae)):
        row = cell(table, model, "infomec.infom")
        x = np.asarray(values)
        low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert row["n"] == len(x)
        assert row["mean"] == pytest.approx(x.mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    # by hand for ae: mean 0.57, s = 0.045826, t(0.975, 2) = 4.302653
    row = cell(table, "ae", "infomec.infom")
    assert row["ci_high"] - row["mean"] == pytest.approx(4.302653 * 0.0458258 / math.sqrt(3),
                                                         rel=1e-5)
    wider = paper_table(runs({"ae": {"mig": [0.1, 0.3, 0.2]}}), confidence=0.99)
    assert wider.loc[0, "ci_high"] - wider.loc[0, "mean"] > row["ci_high"] - row["mean"]


def test_best_respects_the_metric_direction_and_ties_and_datasets():
    table = paper_table(runs({
        "a": {"mig": [0.5, 0.7], "unsupervised.mutual_info": [0.2, 0.4]},
        "b": {"mig": [0.6, 0.6], "unsupervised.mutual_info": [0.1, 0.2]},
        "c": {"mig": [0.4, 0.4], "unsupervised.mutual_info": [0.9, 0.8]},
    }), metrics=["mig", "unsupervised.mutual_info"])
    best = table[table["best"]][["model", "metric"]].values.tolist()
    # mig: a and b tie at 0.6 (higher is better); mutual_info: lower is better → b
    assert sorted(best) == [["a", "mig"], ["b", "mig"], ["b", "unsupervised.mutual_info"]]
    two = pd.concat([runs({"a": {"mig": [0.9]}, "b": {"mig": [0.1]}}, dataset="d1"),
                     runs({"a": {"mig": [0.1]}, "b": {"mig": [0.9]}}, dataset="d2")])
    marked = paper_table(two)
    assert marked[marked["best"]][["dataset", "model"]].values.tolist() == [
        ["d1", "a"], ["d2", "b"]]


def test_one_seed_has_no_interval_and_missing_cells_are_kept():
    table = paper_table(runs({"a": {"mig": [0.4], "dci.disentanglement": [0.3]},
                              "b": {"mig": [0.2], "dci.disentanglement": [math.nan]}}))
    one = cell(table, "a", "mig")
    assert one["n"] == 1 and one["mean"] == 0.4
    assert math.isnan(one["ci_low"]) and math.isnan(one["ci_high"])
    missing = cell(table, "b", "dci.disentanglement")
    assert missing["n"] == 0 and math.isnan(missing["mean"]) and not missing["best"]
    assert cell(table, "a", "dci.disentanglement")["best"]
    text = paper_markdown(table)
    assert "| model | n | DCI-D | MIG |" in text  # the paper's order, not the table's
    assert "| a | 1 | **0.300 (n=1)** | **0.400 (n=1)** |" in text
    assert "| b | 1 | — | 0.200 (n=1) |" in text


def test_only_finished_runs_count_and_settings_are_separated():
    frame = runs({"beta_vae": {"mig": [0.1, 0.2, 0.5, 0.7, 9.0]}},
                 status=["done", "done", "done", "done", "failed"])
    frame["hp.model.beta"] = [1.0, 1.0, 4.0, 4.0, 4.0]
    frame["seed"] = [0, 1, 0, 1, 2]
    table = paper_table(frame)
    assert table[["model", "n"]].values.tolist() == [["beta_vae (beta=1)", 2],
                                                     ["beta_vae (beta=4)", 2]]
    assert table["mean"].tolist() == pytest.approx([0.15, 0.6])
    # one setting per model: the label is the model's name
    assert paper_table(frame[frame["hp.model.beta"] == 4.0])["model"].tolist() == ["beta_vae"]


def test_paired_by_seed_when_seeds_match_else_welch():
    qlae = [0.81, 0.74, 0.90, 0.77]
    ae = [0.52, 0.61, 0.58, 0.70]
    vae = [0.60, 0.55, 0.65]
    frame = runs({"qlae": {"mig": qlae}, "ae": {"mig": ae}, "vae": {"mig": vae}},
                 seeds={"vae": [0, 1, 5]})
    paired = paired_comparison(frame, reference="qlae")
    assert list(paired.columns) == list(PAIRED_COLUMNS)
    assert paired["model"].tolist() == ["ae", "vae"]
    same = paired.iloc[0]
    assert same["method"] == "paired" and same["n"] == same["n_reference"] == 4
    rel = stats.ttest_rel(ae, qlae).confidence_interval(0.95)
    assert same["difference"] == pytest.approx(np.mean(ae) - np.mean(qlae))
    assert (same["ci_low"], same["ci_high"]) == pytest.approx((rel.low, rel.high))
    other = paired.iloc[1]
    assert other["method"] == "welch" and (other["n"], other["n_reference"]) == (3, 4)
    welch = stats.ttest_ind(vae, qlae, equal_var=False).confidence_interval(0.95)
    assert other["difference"] == pytest.approx(np.mean(vae) - np.mean(qlae))
    assert (other["ci_low"], other["ci_high"]) == pytest.approx((welch.low, welch.high))
    # the paired interval is narrower than Welch's on the same values: pairing is used
    unpaired = stats.ttest_ind(ae, qlae, equal_var=False).confidence_interval(0.95)
    assert same["ci_high"] - same["ci_low"] != pytest.approx(unpaired.high - unpaired.low)


def test_a_missing_value_breaks_the_pairing_and_one_value_has_no_interval():
    frame = runs({"qlae": {"mig": [0.5, 0.6, 0.7]}, "ae": {"mig": [0.4, math.nan, 0.3]},
                  "vae": {"mig": [0.2, math.nan, math.nan]}})
    paired = paired_comparison(frame, reference="qlae")
    ae, vae = paired.iloc[0], paired.iloc[1]
    assert ae["method"] == "welch" and ae["n"] == 2  # seeds {0, 2} vs {0, 1, 2}
    assert vae["method"] == "welch" and vae["difference"] == pytest.approx(0.2 - 0.6)
    assert math.isnan(vae["ci_low"]) and math.isnan(vae["ci_high"])
    text = paper_markdown(paper_table(frame), paired)
    assert "## Difference to qlae" in text
    assert "| vae | -0.400 (n=1) | Welch |" in text


def test_the_reference_must_have_finished_runs():
    frame = runs({"qlae": {"mig": [0.5]}, "ae": {"mig": [0.4]}},
                 status=["failed", "done"])
    with pytest.raises(ValueError, match=r"reference must be a model.*'qlae'.*\['ae'\]"):
        paired_comparison(frame, reference="qlae")
    with pytest.raises(ValueError, match=r"confidence must be a number in \(0, 1\)"):
        paper_table(frame, confidence=95)
    with pytest.raises(ValueError, match="no score 'infom'"):
        paper_table(frame, metrics=["infom"])


def test_datasets_without_the_reference_are_skipped():
    frame = pd.concat([runs({"qlae": {"mig": [0.5, 0.6]}, "ae": {"mig": [0.4, 0.5]}},
                            dataset="d1"),
                       runs({"ae": {"mig": [0.4, 0.5]}}, dataset="d2")])
    paired = paired_comparison(frame, reference="qlae")
    assert paired[["dataset", "model"]].values.tolist() == [["d1", "ae"]]


def test_write_paper_tables_beside_the_results(tmp_path):
    frame = runs({"ae": {"mig": [0.4, 0.5], "infomec.infom": [0.6, 0.7]},
                  "beta_vae": {"mig": [0.3, 0.2], "infomec.infom": [0.5, 0.4]}})
    frame["metric_id.mig"] = "mig/hist20@1"
    frame.to_csv(tmp_path / "results.csv", index=False)
    paths = write_paper_tables(tmp_path)  # no qlae: the first model is the reference
    assert paths["paired_csv"].name == "paired_vs_ae.csv"
    assert "factor_csv" not in paths and "per factor" not in paths["markdown"].read_text()
    written = pd.read_csv(paths["csv"])
    assert list(written.columns) == list(PAPER_COLUMNS)
    pd.testing.assert_frame_equal(written, paper_table(frame), check_dtype=False)
    assert pd.read_csv(paths["paired_csv"])["model"].tolist() == ["beta_vae"] * 2
    text = paths["markdown"].read_text()
    assert "`mig/hist20@1`" in text and "| model | n | InfoM | MIG |" in text
    paths = write_paper_tables(tmp_path, reference="beta_vae", metrics=["mig"])
    assert paths["paired_csv"].name == paired_csv_name("beta_vae")
    assert pd.read_csv(paths["csv"])["metric"].tolist() == ["mig", "mig"]


def test_paired_differences_figure_has_a_panel_per_score():
    from disentkit.viz.study_figures import paired_differences

    frame = runs({"qlae": {"mig": [0.5, 0.6], "infomec.infom": [0.7, 0.8]},
                  "ae": {"mig": [0.4, 0.3], "infomec.infom": [0.6, 0.5]},
                  "vae": {"mig": [0.2], "infomec.infom": [0.1]}})
    fig = paired_differences(paired_comparison(frame, reference="qlae"))
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.axison]
    assert titles == ["infomec.infom", "mig"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["ae", "vae"]
    with pytest.raises(ValueError, match="at least one comparison"):
        paired_differences(paired_comparison(runs({"qlae": {"mig": [0.5]}}), "qlae"))


def test_factor_table_per_score_and_factor_matches_scipy():
    frame = runs({"qlae": {"mig": [0.3, 0.5, 0.4], "infomec.infoe": [0.6, 0.7, 0.8],
                           "infomec.infom": [0.7, 0.8, 0.9]},
                  "ae": {"mig": [0.1, 0.2, 0.3], "infomec.infoe": [0.5, 0.6, 0.7],
                         "infomec.infom": [0.5, 0.5, 0.6]}})
    per_factor = {  # column → values of qlae's three seeds, then ae's
        "factor.mig.shape": [0.2, 0.4, 0.3, 0.1, 0.1, 0.4],
        "factor.mig.scale": [0.4, 0.6, 0.5, 0.1, 0.3, 0.2],
        "factor.infomec.infoe.shape": [0.9, 0.8, 0.7, 0.9, 0.8, 1.0],
        "factor.infomec.infoe.scale": [0.3, 0.6, np.nan, 0.1, 0.3, 0.3],
    }
    for column, values in per_factor.items():
        frame[column] = values
    table = factor_table(frame)
    assert list(table.columns) == list(FACTOR_COLUMNS)
    # the paper's score order (InfoE before MIG; InfoM has no per-factor values), then
    # the factors in the results' column order
    assert table[["model", "metric", "factor"]].values.tolist()[:4] == [
        ["qlae", "infomec.infoe", "shape"], ["qlae", "infomec.infoe", "scale"],
        ["qlae", "mig", "shape"], ["qlae", "mig", "scale"]]
    assert len(table) == 8
    for i, model in enumerate(("qlae", "ae")):
        for column, values in per_factor.items():
            x = np.asarray(values[3 * i: 3 * i + 3])
            x = x[np.isfinite(x)]
            metric, factor = column.removeprefix("factor.").rsplit(".", 1)
            (index,) = np.flatnonzero((table["model"] == model) & (table["metric"] == metric)
                                      & (table["factor"] == factor))
            row = table.iloc[index]
            low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
            assert row["n"] == len(x)
            assert row["mean"] == pytest.approx(x.mean())
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    best = table[table["best"]]
    assert best[["model", "metric", "factor"]].values.tolist() == [
        ["qlae", "infomec.infoe", "scale"], ["qlae", "mig", "shape"],
        ["qlae", "mig", "scale"], ["ae", "infomec.infoe", "shape"]]
    assert factor_table(frame, metrics=["mig"])["metric"].unique().tolist() == ["mig"]
    assert factor_table(frame, metrics=["infomec.infom"]).empty
    text = paper_markdown(paper_table(frame), factors=table)
    assert "### MIG per factor" in text and "| model | n | shape | scale |" in text
    assert "| ae | 3 | **0.900 ± 0.248** | 0.233 ± 0.287 |" in text
    assert "### InfoE per factor" in text and "(n=2)" in text  # qlae's NaN for scale


def test_per_factor_records_become_named_columns():
    records = {
        "mig": {"per_factor": {"score": {"factors": [0, 2], "values": [0.25, 0.5]}}},
        "infomec": {"per_factor": {"infoe": {"factors": [1], "values": [0.75]},
                                   "infoc": {"factors": [0, 3], "values": [0.1, 0.2]}}},
        "dci": {"disentanglement": 0.4},  # no per-factor record
    }
    row: dict = {}
    _flatten_factor_scores(records, ["a", "b", "c"], row)  # factor 3 has no name
    assert row == {"factor.mig.a": 0.25, "factor.mig.c": 0.5,
                   "factor.infomec.infoe.b": 0.75, "factor.infomec.infoc.a": 0.1,
                   "factor.infomec.infoc.f3": 0.2}
    row = {}
    _flatten_factor_scores(records, None, row)
    assert set(row) == {"factor.mig.f0", "factor.mig.f2", "factor.infomec.infoe.f1",
                        "factor.infomec.infoc.f0", "factor.infomec.infoc.f3"}
