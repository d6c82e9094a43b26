"""Figures of a run, on tiny real runs (QLAE and VAE on xyobject_tiny, a few steps):
shapes, uint8 ranges, determinism per seed, codebook traversals, heatmap ordering, and the
PNGs render_run_figures writes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from disentkit.data import get_dataset
from disentkit.data.show import to_rgb
from disentkit.models import build_model
from disentkit.train import evaluate_run, fit, load_model
from disentkit.viz import (
    active_passive,
    codebook_usage,
    importance_heatmap,
    matching_order,
    mi_heatmap,
    prior_samples,
    reconstruction_grid,
    render_run_figures,
    save_figure,
    save_gif,
    score_bars,
    score_table,
    training_curves,
    training_scores,
    traversal_frames,
    traversal_grid,
    traversal_plan,
)
from disentkit.viz.arrays import LABEL_COLOUR, RECONSTRUCTION_LABELS, label_rows, tile

N_LATENTS, N_VALUES, SIZE = 4, 5, 32
OPTIONS = {"qlae": {"n_latents": N_LATENTS, "n_values": N_VALUES},
           "vae": {"n_latents": N_LATENTS}}
# DCI's classifiers are the slow part of evaluation: scored on the VAE run only
METRICS = {"qlae": ["mig", "infomec"], "vae": ["mig", "dci", "infomec"]}
# the VAE run is also scored during training (eval.every), the QLAE run is not
EVAL = {"qlae": {}, "vae": {"every": 2, "every_n_samples": 200, "every_metrics": ["mig", "sap"]}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained and evaluated run per model, made once for this file."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("viz")
    made = {}
    for name, options in OPTIONS.items():
        run = fit({"model": name, "data": "xyobject_tiny", "steps": 4, "batch_size": 8,
                   "seed": 0, "accelerator": "cpu", "log_every": 1, "checkpoint_every": 100,
                   "model_options": options, "eval": EVAL[name]}, run_dir=root / name,
                  progress=False)
        evaluate_run(run, n_samples=200, metrics=METRICS[name], mode="fast")
        made[name] = run
    yield made
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images():
    ds = get_dataset("xyobject_tiny")
    rng = np.random.default_rng(0)
    return ds.images_from_factors(ds.sample_factors(3, rng)), ds.images_from_factors(
        ds.sample_factors(64, rng))


@pytest.fixture(scope="module", params=["qlae", "vae"])
def model(request, runs):
    return request.param, load_model(runs[request.param])


def _record_decoder_inputs(model, monkeypatch):
    seen = []
    decode = model.decode

    def recording(z):
        seen.append(z.detach().cpu().numpy().copy())
        return decode(z)

    monkeypatch.setattr(model, "decode", recording)
    return seen


# --------------------------------------------------------------------------- arrays


def test_traversal_grid_shape_range_and_determinism(model, images):
    name, m = model
    seeds, marginal = images
    rng_state = torch.get_rng_state()
    grid = traversal_grid(m, seeds, n_steps=6, marginal_images=marginal)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's RNG is untouched
    again = traversal_grid(m, seeds, n_steps=6, marginal_images=marginal)
    steps = N_VALUES if name == "qlae" else 6
    cell = SIZE + 2 * 2 + 2  # image + passive frame + gap
    panel = steps * cell + 2
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape == (N_LATENTS * cell + 2, 3 * panel + 2 * 8, 3)
    assert np.array_equal(grid, again)
    assert 0 < len(np.unique(grid)) and grid.max() <= 255


def test_quantized_traversal_visits_exactly_the_codebook_values(runs, images, monkeypatch):
    m = load_model(runs["qlae"])
    codebooks = np.sort(m.quantizer.values.detach().numpy(), axis=1)  # (D, V)
    seeds, _ = images
    plan = traversal_plan(m, seeds[:2], n_steps=10)
    assert plan.kind == "codebook"
    for j in range(N_LATENTS):
        np.testing.assert_array_equal(plan.values[j], codebooks[j])
    seen = _record_decoder_inputs(m, monkeypatch)
    traversal_grid(m, seeds[:2], plan=plan)
    z = np.concatenate(seen).reshape(N_LATENTS, N_VALUES, 2, N_LATENTS)  # rows, steps, seeds
    base = m.representation(torch.from_numpy(seeds[:2]).permute(0, 3, 1, 2).float() / 255,
                            "quantized").numpy()
    for row, j in enumerate(plan.order):
        swept = z[row, :, :, j]  # (S, N)
        assert sorted(set(swept.ravel().tolist())) == codebooks[j].tolist()
        np.testing.assert_array_equal(swept, np.repeat(codebooks[j][:, None], 2, axis=1))
        others = np.delete(z[row], j, axis=-1)  # the other latents keep the seed's code
        np.testing.assert_array_equal(others, np.broadcast_to(np.delete(base, j, axis=1),
                                                              others.shape))
    # a shorter sweep visits codebook values only, both ends included
    short = traversal_plan(m, seeds[:2], n_steps=3)
    for j in range(N_LATENTS):
        assert set(short.values[j].tolist()) <= set(codebooks[j].tolist())
        assert short.values[j][0] == codebooks[j][0] and short.values[j][-1] == codebooks[j][-1]


def test_continuous_traversal_sweeps_marginal_quantiles(runs, images):
    m = load_model(runs["vae"])
    seeds, marginal = images
    plan = traversal_plan(m, seeds, n_steps=5, marginal_images=marginal)
    means = m.representation(torch.from_numpy(marginal).permute(0, 3, 1, 2).float() / 255,
                             "mean").double().numpy()
    expected = np.quantile(means, np.linspace(0.05, 0.95, 5), axis=0).T
    np.testing.assert_allclose(np.stack(plan.values), expected, rtol=1e-5)
    assert plan.criterion == "kl" and np.isfinite(plan.activity).all()
    assert sorted(plan.order.tolist()) == list(range(N_LATENTS))
    assert np.all(np.diff(plan.activity[plan.order]) <= 0)  # most active first
    with pytest.raises(ValueError, match="quantized model"):
        traversal_plan(m, seeds, kind="codebook")


def test_traversal_frames_and_gif(model, images, tmp_path):
    _, m = model
    seeds, _ = images
    frames = traversal_frames(m, seeds[:2], n_steps=4)
    steps = len(traversal_plan(m, seeds[:2], n_steps=4).values[0])
    assert len(frames) == 2 * steps - 2
    cell = SIZE + 2 * 2 + 2
    assert {f.shape for f in frames} == {(N_LATENTS * cell + 2, 2 * cell + 2, 3)}
    assert all(f.dtype == np.uint8 for f in frames)
    path = save_gif(frames, tmp_path / "t.gif")
    with Image.open(path) as gif:
        assert gif.size == frames[0].shape[1::-1]
        total = 0
        for i in range(gif.n_frames):  # identical neighbours are merged, time is kept
            gif.seek(i)
            total += gif.info["duration"]
        assert 1 <= gif.n_frames <= len(frames) and total == 200 * len(frames)
    with pytest.raises(ValueError, match="at least one frame"):
        save_gif([], tmp_path / "none.gif")


def _ink(band: np.ndarray) -> np.ndarray:
    """Bool mask of the label-coloured pixels of a band."""
    return (band == LABEL_COLOUR).all(-1)


def _split_bands(grid: np.ndarray, band: int, rows: int = 2, gap: int = 2):
    """(the bands above each row, the grid without them) of a labelled grid."""
    bands, keep, top = [], [], 0
    for _ in range(rows):
        keep.append(grid[top:top + gap])
        bands.append(grid[top + gap:top + gap + band])
        top += gap + band
        keep.append(grid[top:top + SIZE])
        top += SIZE
    keep.append(grid[top:])
    return bands, np.concatenate(keep)


def test_reconstruction_grid(model, images):
    _, m = model
    seeds, _ = images
    bare = reconstruction_grid(m, seeds, labels=False)
    assert bare.dtype == np.uint8 and bare.shape == (2 * (SIZE + 2) + 2, 3 * (SIZE + 2) + 2, 3)
    np.testing.assert_array_equal(bare[2:2 + SIZE, 2:2 + SIZE], to_rgb(seeds)[0])  # input
    assert np.array_equal(bare, reconstruction_grid(m, seeds, labels=False))
    # labelled (the default): a band above each row, the grid's pixels kept between them
    grid = reconstruction_grid(m, seeds)
    band = (grid.shape[0] - bare.shape[0]) // 2
    assert band == 11 * max(1, SIZE // 32) + 3
    _, rest = _split_bands(grid, band)
    np.testing.assert_array_equal(rest[:, : bare.shape[1]], bare)
    assert (rest[:, bare.shape[1]:] == 255).all()  # widened for the label only
    assert np.array_equal(grid, reconstruction_grid(m, seeds))


def test_reconstruction_rows_are_labelled_in_the_picture(model, images):
    """The band above each row holds ink, "reconstruction" wider than "input", nothing
    but background and ink, and the labels are the documented ones."""
    _, m = model
    seeds, _ = images
    grid = reconstruction_grid(m, seeds)
    band = (grid.shape[0] - reconstruction_grid(m, seeds, labels=False).shape[0]) // 2
    bands, _ = _split_bands(grid, band)
    ink = [np.flatnonzero(_ink(b).any(0)) for b in bands]
    assert all(len(cols) > 0 for cols in ink), "a row has no label"
    span = [cols[-1] - cols[0] + 1 for cols in ink]
    assert 2 * span[0] < span[1], span  # "input" (5 letters) vs "reconstruction" (14)
    assert all(cols[0] >= 2 for cols in ink)  # a gap from the left edge
    for b in bands:
        assert {tuple(px) for px in b.reshape(-1, 3).tolist()} == {
            (255, 255, 255), tuple(LABEL_COLOUR)}
        rows = np.flatnonzero(_ink(b).any(1))
        assert rows[0] >= 1 and rows[-1] < band - 1  # inside the band, clear of the cells
    assert tuple(RECONSTRUCTION_LABELS) == ("input", "reconstruction")


def test_label_rows_checks_its_input_and_scales_with_the_cells():
    grid = tile(np.zeros((2, 2, 64, 64, 3), np.uint8))
    small = label_rows(grid, ["a", "b"], cell_height=64, scale=1)
    large = label_rows(grid, ["a", "b"], cell_height=64)  # 64 // 32: twice as large
    assert large.shape[0] - grid.shape[0] == 2 * (22 + 3)
    assert _ink(large).sum() == 4 * _ink(small).sum() > 0
    wide = label_rows(tile(np.zeros((2, 1, 8, 8, 3), np.uint8)), ["reconstruction", "x"],
                      cell_height=8)
    assert wide.shape[1] > 12 and _ink(wide).any()  # widened to hold its label
    with pytest.raises(ValueError, match="one per row"):
        label_rows(grid, ["a", "b", "c"], cell_height=64)
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        label_rows(grid[..., 0], ["a", "b"], cell_height=64)


def test_prior_samples_are_seeded(model, monkeypatch):
    name, m = model
    a, b, c = prior_samples(m, 5, 0, n_cols=3), prior_samples(m, 5, 0, n_cols=3), prior_samples(
        m, 5, 1, n_cols=3)
    assert a.dtype == np.uint8 and a.shape == (2 * (SIZE + 2) + 2, 3 * (SIZE + 2) + 2, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    if name == "qlae":  # uniform over each latent's codebook values
        seen = _record_decoder_inputs(m, monkeypatch)
        prior_samples(m, 64, 0)
        books = m.quantizer.values.detach().numpy()  # (D, V)
        z = np.concatenate(seen)
        assert all(set(z[:, j].tolist()) <= set(books[j].tolist()) for j in range(N_LATENTS))


def test_deterministic_autoencoder_has_no_prior():
    torch.manual_seed(0)
    ae = build_model("ae", image_shape=(3, SIZE, SIZE), n_latents=3)
    assert prior_samples(ae, 4, 0) is None


# --------------------------------------------------------------------------- figures


def test_matching_order_puts_each_factors_best_latent_on_the_diagonal():
    # latent 3 is x, latent 0 is y, latent 4 is colour; 1 and 2 weak (2 leans to x)
    nmi = np.array([[0.05, 0.80, 0.10],
                    [0.02, 0.05, 0.03],
                    [0.30, 0.02, 0.01],
                    [0.90, 0.10, 0.05],
                    [0.10, 0.20, 0.70]])
    order = matching_order(nmi)
    assert order.tolist() == [3, 0, 4, 2, 1]
    assert np.argmax(nmi[order][:3], axis=1).tolist() == [0, 1, 2]
    # a shared best latent: the matching keeps latents distinct and maximises the total
    assert matching_order([[0.9, 0.8], [0.7, 0.1]]).tolist() == [1, 0]
    fig = mi_heatmap(nmi, ["x", "y", "colour"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["z3", "z0", "z4", "z2", "z1"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "colour"]
    np.testing.assert_array_equal(ax.images[0].get_array(), nmi[order])
    with pytest.raises(ValueError, match="factor_names"):
        mi_heatmap(nmi, ["x", "y"])
    with pytest.raises(ValueError, match="NaN"):
        mi_heatmap(np.full((2, 2), np.nan), ["x", "y"])


def test_score_bars_from_an_evaluation_json(tmp_path):
    payload = {"metrics": {
        "mig": {"score": 0.4, "intervals": {"score": [0.3, 0.5]},
                "baselines": {"random": {"score": 0.02}, "ground_truth": {"score": 1.0}}},
        "dci": {"disentanglement": 0.6, "completeness": 0.5, "informativeness_train": 0.9,
                "informativeness_test": 0.8, "intervals": {}, "baselines": {}}}}
    scores, intervals, baselines = score_table(payload)
    assert scores["mig"] == 0.4 and scores["dci.completeness"] == 0.5
    assert intervals == {"mig": (0.3, 0.5)}
    assert baselines == {"random": {"mig": 0.02}, "ground_truth": {"mig": 1.0}}
    fig = score_bars(payload)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["mig", "dci.disentanglement"]
    assert len(ax.collections) >= 3  # error bars + two baseline marker sets
    with Image.open(save_figure(fig, tmp_path / "s.png")) as img:
        assert img.format == "PNG" and img.size[0] > 100


def test_figures_from_a_run(runs, images, tmp_path):
    metrics = json.loads((runs["vae"] / "metrics.json").read_text())
    record = metrics["representations"]["mean"]["metrics"]
    importance = np.asarray(record["dci"]["importance"])
    fig = importance_heatmap(importance, metrics["dataset"]["factor_names"])
    assert fig.axes[0].images[0].get_array().shape == importance.shape
    assert score_bars(metrics, representation="sampled").axes[0].get_xticklabels()

    idx = np.array([[0, 1], [0, 1], [2, 1], [0, 1]])
    usage = codebook_usage(idx, 3)
    heights = [[p.get_height() for p in ax.patches] for ax in usage.axes[:2]]
    assert heights == [[0.75, 0.0, 0.25], [0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        codebook_usage(idx + 1, 3)

    two = active_passive([0.5, 0.001, 0.2], {"passive_mean": 0.7, "passive_sampled": 0.05,
                                              "active_mean": 0.1, "active_sampled": 0.1},
                         threshold=0.01)
    assert len(two.axes) == 2
    assert len(active_passive([1.0, 0.0], criterion="entropy").axes) == 1

    curves = training_curves(runs["vae"] / "log" / "metrics.csv")
    assert {ax.get_title() for ax in curves.axes if ax.lines} == {"loss", "reconstruction",
                                                                  "kl"}  # no eval/ column


def test_training_scores_draw_one_panel_per_score_at_the_scored_steps(runs):
    fig = training_scores(runs["vae"] / "log" / "metrics.csv")
    panels = {ax.get_title(): ax for ax in fig.axes if ax.lines}
    assert set(panels) == {"mean/mig", "mean/sap"}
    for ax in panels.values():
        steps, values = ax.lines[0].get_data()
        assert list(steps) == [2.0, 4.0]  # scored every 2 steps, logged every step
        assert all(0 <= v <= 1 for v in values)
        assert ax.get_ylim() == (-0.02, 1.02)  # scores in [0, 1] on a [0, 1] axis
    with pytest.raises(ValueError, match=r"train with eval\.every=N"):
        training_scores(runs["qlae"] / "log" / "metrics.csv")


def test_render_run_figures_writes_every_applicable_figure(runs, tmp_path):
    labels: list[str] = []
    renders = {}
    expected = {
        "qlae": {"traversals", "traversals_gif", "reconstructions", "samples",
                 "codebook_usage", "active_passive", "mi_heatmap", "scores_quantized",
                 "scores_indices", "scores_mean", "training_curves", "factor_scores_quantized",
                 "factor_scores_indices", "factor_scores_mean"},
        "vae": {"traversals", "traversals_gif", "reconstructions", "samples", "active_passive",
                "mi_heatmap", "dci_importance", "scores_mean", "scores_sampled",
                "training_curves", "training_scores", "factor_scores_mean",
                "factor_scores_sampled"},
    }
    for name, run in runs.items():
        written = render_run_figures(run, n_images=4, seed=0, progress=labels.append)
        renders[name] = {k: p.read_bytes() for k, p in written.items()}
        assert set(written) == expected[name]
        for path in written.values():
            assert path.parent == run / "figures" and path.is_file()
            with Image.open(path) as img:
                img.verify()
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("RGB"))
                assert pixels.std() > 0  # not blank
        assert written["traversals_gif"].suffix == ".gif"
    assert labels[0] == "traversals" and "training curves" in labels

    # the same seed gives the same pictures
    vae = runs["vae"]
    again = {k: p.read_bytes() for k, p in render_run_figures(vae, n_images=4).items()}
    assert again == renders["vae"]

    # a run not evaluated yet: the metric figures are skipped, the rest drawn
    fresh = tmp_path / "fresh"
    shutil.copytree(vae, fresh, ignore=shutil.ignore_patterns("metrics.json", "figures"))
    written = render_run_figures(fresh, n_images=2)
    assert "mi_heatmap" not in written and not any(k.startswith("scores") for k in written)
    assert {"traversals", "reconstructions", "training_curves"} <= set(written)


def test_importing_viz_imports_neither_torch_nor_matplotlib():
    code = ("import sys, disentkit, disentkit.metrics, disentkit.viz; "
            "print([m for m in ('torch', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "[]"


def test_factor_bars_draw_one_bar_per_factor_with_intervals_and_baselines():
    import numpy as np

    from disentkit import evaluate
    from disentkit.viz.figures import factor_bars

    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, (400, 3))
    z = s + 0.3 * rng.standard_normal(s.shape)
    payload = evaluate(z, s, metrics=["mig", "sap"], n_bootstrap=3, baselines=True).to_json()
    fig = factor_bars(payload, ["a", "b", "c"])
    assert fig is not None and len(fig.axes) == 2
    ax = fig.axes[0]
    assert len(ax.patches) == 3  # one bar per factor
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert len(ax.collections) >= 3  # error bars + two baseline marker sets
    assert factor_bars({"metrics": {}}) is None


def test_factorized_traversal_sweeps_each_sub_codebook():
    """fq_ae: latent j (sub-codebook j // n_tokens) sweeps its own sub-codebook's most used
    entries, and each decoded cell is the seed's code with latent j's vector replaced."""
    from disentkit.viz.arrays import _traversal_cells

    torch.manual_seed(0)
    model = build_model("fq_ae", image_shape=(3, 32, 32), n_codebooks=2, n_tokens=2,
                        codebook_size=16).eval()
    rng = np.random.default_rng(0)
    seeds = (rng.random((2, 32, 32, 3)) * 255).astype(np.uint8)
    marginal = (rng.random((64, 32, 32, 3)) * 255).astype(np.uint8)
    plan = traversal_plan(model, seeds, n_steps=4, marginal_images=marginal)
    assert plan.kind == "codebook" and plan.n_latents == 4 and plan.width == 8
    x = torch.from_numpy(marginal).permute(0, 3, 1, 2).float() / 255
    indices = model.representation(x, "indices").numpy()  # (64, 4)
    for j in range(4):
        book = model.quantizers[j // 2].normalized_codebook().detach().numpy()
        np.testing.assert_array_equal(plan.vectors[j], book)
        counts = np.bincount(indices[:, j], minlength=16)
        used = set(np.flatnonzero(counts))
        picked = set(plan.values[j].tolist())
        # the most used entries first: every used entry is picked, or every pick is used
        assert used <= picked or picked <= used
        assert min(counts[list(picked & used)]) >= max(
            [counts[k] for k in used - picked], default=0)
    cells, filled = _traversal_cells(model, plan)
    row = int(np.flatnonzero(plan.order == 1)[0])  # latent 1's row
    z = torch.from_numpy(plan.base[:1].copy())  # seed 0's code (1, 32)
    z[0, 8:16] = torch.from_numpy(plan.vectors[1][plan.values[1][0]])
    expect = torch.sigmoid(model.decode(z)).mul(255).round().clamp(0, 255)
    got = torch.from_numpy(cells[row, 0, 0].astype(np.float32)).permute(2, 0, 1)
    assert filled[row, 0]
    assert (got - expect[0]).abs().max() <= 1
    assert prior_samples(model, n=4, seed=0) is not None
