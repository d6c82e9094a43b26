"""Score a trained run: :func:`evaluate_run` writes ``metrics.json`` into the run directory.

The evaluation set follows the reference protocol's spirit (disentanglement_lib, QLAE):
``n_samples`` factor configurations drawn with ``sample_factors(n, default_rng(seed))``
(uniform and independent per factor for a complete grid), rendered, and encoded in
batches under ``torch.inference_mode()`` on the model's device. Every representation the
model offers is scored (VAEs: ``mean`` and ``sampled``; quantized models: ``quantized``
and ``indices``), each with the same factors, metrics and seed.

Codebook indices are labels, not numbers (entry 7 is not "between" entries 6 and 8), so
for the ``indices`` representation each metric runs with the options it registered for
label latents (:attr:`disentkit.metrics.MetricInfo.index_options`): the
mutual-information metrics use the discrete (plug-in) estimator on the labels (InfoMEC
with ``latent_type="discrete"``, MIG and modularity with ``estimator="discrete"``);
histogram binning or kNN on label values would merge or neighbour unrelated entries. DCI splits each
index one category against the rest (``latent_type="categorical"``: trees on one-hot
columns, importances summed per latent), so its scores do not depend on how the entries
are numbered; in reference mode that fits ``GradientBoostingClassifier()`` on one column
per entry used, which takes minutes for wide codebooks (fast mode: about a second). SAP
and explicitness read each index as a number, as the reference code does with its
integer codes; their ``indices`` scores are meaningful only where indices follow the
codebook's order (scalar codebooks whose values stay sorted), so prefer the ``quantized``
representation for them.

Sampled representations and the reconstruction pass draw from torch's RNG, seeded with
``seed`` inside :func:`torch.random.fork_rng`, so the scores are reproducible and the
caller's random state is left as it was.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from disentkit._validation import about_file
from disentkit.metrics import MetricInfo
from disentkit.train.checkpoint import (
    MODEL_JSON_NAME,
    _jsonable,
    load_model,
    read_model_info,
    write_json,
)

__all__ = ["METRICS_NAME", "SCORED_KINDS", "evaluate_run"]

METRICS_NAME = "metrics.json"
SCORED_KINDS = ("mean", "sampled", "quantized", "indices")
#: representation kinds whose latents are labels (codebook indices), scored with each
#: metric's registered ``index_options``
LABEL_KINDS = ("indices",)


def _run_data(run_dir: Path, record: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if record.get("data"):
        return str(record["data"]), dict(record.get("data_options") or {})
    config_path = run_dir / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        return str(config["data"]), dict(config.get("data_options") or {})
    raise ValueError(f"{str(run_dir)!r}: neither model.json nor config.json names the dataset")


def _metric_options(
    info: MetricInfo, kind: str, user_options: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The options ``info``'s metric gets on representation ``kind``: its registered
    ``index_options`` for label kinds, then the user's options (which win)."""
    base = info.index_options if kind in LABEL_KINDS else {}
    return {**base, **user_options.get(info.name, {})}


def evaluate_run(
    run_dir: str | os.PathLike[str],
    n_samples: int = 10_000,
    metrics: Iterable[str] | None = None,
    mode: str = "reference",
    seed: int = 0,
    *,
    batch_size: int = 256,
    device: Any = None,
    progress: Callable[[str], None] | None = None,
    n_bootstrap: int = 0,
    baselines: bool = False,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Score the trained model of ``run_dir`` and write ``run_dir/metrics.json``.

    Args:
        run_dir: a finished run directory (``model.safetensors`` + ``model.json``).
        n_samples: factor configurations sampled for the array metrics.
        metrics: metric registry names (array metrics, and sampling metrics such as
            ``beta_vae``/``factor_vae``, which draw their own observations from the
            dataset); default: the default suite.
        mode: ``"reference"`` or ``"fast"`` metric settings.
        seed: seeds the sampled factors, sampled representations and every metric.
        batch_size: images per encoder call.
        device: where to run the model (default: CUDA when available, else CPU).
        progress: called with a short label before each metric runs.
        n_bootstrap: bootstrap replicates for the array metrics' intervals (0: none).
        baselines: also score the factors themselves and random latents.
        options: per-metric options for every representation (a run config's
            ``eval.options``), e.g. ``{"infomec": {"pruning": "training"}}``; applied over
            the mode's fast options and, for label representations, over the metric's
            ``index_options`` (explicit options win). Checked before the model is loaded.

    Returns:
        what ``metrics.json`` holds: per representation kind the flat scores
        (``"mig"``, ``"dci.disentanglement"``, ``"mig.metric_id"``, ...) and each
        metric's full record (ID, options, samples used); ``active_latents`` for models
        with a posterior variance; ``reconstruction`` errors on the evaluation images;
        the dataset's source and the model's step.
    """
    import torch

    from disentkit import __version__
    from disentkit.data import get_dataset
    from disentkit.data.show import max_pixel_value
    from disentkit.data.torch import to_float
    from disentkit.metrics import (
        METRICS,
        active_latents,
        check_metric_options,
        default_suite,
        evaluate,
    )

    start = time.perf_counter()
    path = Path(run_dir).expanduser()
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer ≥ 2; received {n_samples!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer ≥ 1; received {batch_size!r}")
    if mode not in ("reference", "fast"):
        raise ValueError(f"mode must be 'reference' or 'fast'; received {mode!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer ≥ 0; received {seed!r}")
    names = default_suite() if metrics is None else list(dict.fromkeys(metrics))
    if not names:
        raise ValueError("metrics must name at least one metric (or be None: the default suite)")
    infos = [METRICS[n] for n in names]  # unknown names raise, listing the known ones
    user_options = check_metric_options(options, names)  # before anything is computed
    array_names = [i.name for i in infos if i.kind == "array"]
    sampling = [i for i in infos if i.kind != "array"]

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    record = read_model_info(path)
    model = load_model(path, device=device)
    dev = next(model.parameters()).device
    with about_file(path / MODEL_JSON_NAME):
        data_name, data_options = _run_data(path, record)
        dataset = get_dataset(data_name, **data_options)
        c, h, w = (int(v) for v in record.get("image_shape") or (0, 0, 0))
    max_value = max_pixel_value(dataset)
    kinds = [k for k in model.representation_kinds if k in SCORED_KINDS]
    if not kinds:
        raise ValueError(
            f"model {record['model']!r} offers no representation metrics can score "
            f"(offers {list(model.representation_kinds)}; scored: {list(SCORED_KINDS)})"
        )

    factors = np.asarray(dataset.sample_factors(n_samples, np.random.default_rng(seed)))
    reps: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    means: list[np.ndarray] = []
    logvars: list[np.ndarray] = []
    bce_sum = mse_sum = 0.0
    n_pixels = 0
    fork_devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), torch.inference_mode():
        torch.manual_seed(seed)
        for lo in range(0, n_samples, batch_size):
            images = dataset.images_from_factors(factors[lo:lo + batch_size])
            x = to_float(images, dev, max_value=max_value)  # (B, C, H, W) in [0, 1]
            for k in kinds:
                reps[k].append(model.representation(x, k).double().cpu().numpy())
            out = model(x)
            enc = out.encoding
            if enc.logvar is not None:
                mean = enc.mean if enc.mean is not None else enc.z
                means.append(mean.double().cpu().numpy())
                logvars.append(enc.logvar.double().cpu().numpy())
            logits = out.logits.float()
            bce = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, x, reduction="none")
            mse = (torch.sigmoid(logits) - x).pow(2)
            bce_sum += float(bce.sum())
            mse_sum += float(mse.sum())
            n_pixels = int(x[0].numel())

    def representation_fn(kind: str) -> Callable[[np.ndarray], np.ndarray]:
        def encode(observations: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                x = to_float(np.asarray(observations), dev, max_value=max_value)
                return model.representation(x, kind).double().cpu().numpy()

        encode.__qualname__ = f"{record['model']}.representation[{kind}]"
        return encode

    results: dict[str, Any] = {}
    for k in kinds:
        latents = np.concatenate(reps[k], axis=0)  # (n_samples, D)
        entry: dict[str, Any] = {"n_latents": int(latents.shape[1]), "scores": {},
                                 "metrics": {}}
        if array_names:
            ev = evaluate(latents, factors, metrics=array_names, mode=mode, seed=int(seed),
                          options={m: _metric_options(METRICS[m], k, user_options)
                                   for m in array_names},
                          n_bootstrap=int(n_bootstrap), baselines=bool(baselines),
                          progress=None if progress is None else (
                              lambda label, k=k: progress(f"{k}: {label}")))
            entry["scores"].update(ev.to_dict())
            entry["metrics"].update(ev.to_json()["metrics"])
        for info in sampling:
            if progress is not None:
                progress(f"{k}: {info.name}")
            sampling_options = {**(info.fast_options if mode == "fast" else {}),
                                **_metric_options(info, k, user_options)}
            t0 = time.perf_counter()
            with torch.random.fork_rng(devices=fork_devices):
                torch.manual_seed(seed)
                result = info.func(dataset, representation_fn(k), seed=int(seed),
                                   **sampling_options)
            for score, value in result.scores().items():
                entry["scores"][info.name if score == "score" else f"{info.name}.{score}"] = value
            entry["scores"][f"{info.name}.metric_id"] = result.metric_id
            entry["metrics"][info.name] = {**result.to_dict(),
                                           "seconds": time.perf_counter() - t0}
        results[k] = entry

    active = None
    if means:
        res = active_latents(np.concatenate(means), logvar=np.concatenate(logvars))
        active = res.to_dict()

    payload: dict[str, Any] = {
        "disentkit_version": __version__,
        "run_dir": str(path),
        "model": {"name": record["model"], "step": record.get("step"),
                  "config": record.get("config")},
        "dataset": {
            **dataset.source.to_dict(),
            "options": data_options,
            "factor_names": list(dataset.factor_names),
            "factor_sizes": [int(s) for s in dataset.factor_sizes],
            "image_shape": [c, h, w] if c else None,
        },
        "n_samples": int(n_samples),
        "sampling": "dataset.sample_factors(n_samples, numpy.random.default_rng(seed))",
        "seed": int(seed),
        "mode": mode,
        "metrics": names,
        "device": str(dev),
        "representations": results,
        "active_latents": active,
        "reconstruction": {
            "bce_per_image": bce_sum / n_samples,
            "mse_per_image": mse_sum / n_samples,
            "bce_per_pixel": bce_sum / (n_samples * n_pixels),
            "mse_per_pixel": mse_sum / (n_samples * n_pixels),
            "definition": "decoder logits read as Bernoulli logits: BCE with logits, and "
            "squared error of sigmoid(logits), summed over C×H×W per image (per pixel: "
            "divided by C×H×W), averaged over the evaluation images; forward pass as in "
            "training (sampled latents for VAEs)",
        },
    }
    payload["seconds"] = time.perf_counter() - start
    write_json(path / METRICS_NAME, payload)
    return _jsonable(payload)
