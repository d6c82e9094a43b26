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

The same pieces score a model while it trains (``eval.every``, see
:mod:`disentkit.train.trainer`): :class:`EvaluationSet` (the sampled factors, and their
images when rendered once up front), :func:`extract_representations` (encoding in batches
under ``inference_mode`` with torch's RNG forked and seeded) and
:func:`representation_options` (per-metric options a representation kind needs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from disentkit._atomic import jsonable, write_json
from disentkit._validation import about_file
from disentkit.metrics import METRICS
from disentkit.rundir import CONFIG_NAME, METRICS_NAME, MODEL_JSON_NAME, RunDir, read_json

__all__ = [
    "METRICS_NAME",
    "SCORED_KINDS",
    "EvaluationSet",
    "evaluate_run",
    "extract_representations",
    "representation_options",
]

SCORED_KINDS = ("mean", "sampled", "quantized", "indices")
#: representation kinds whose latents are labels (codebook indices), scored with each
#: metric's registered ``index_options``
LABEL_KINDS = ("indices",)


def representation_options(
    kind: str,
    metrics: Sequence[str],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]] | None:
    """Per-metric options for scoring the ``kind`` representation with ``metrics``.

    The options the representation needs (label kinds such as ``indices``: each metric's
    registered ``index_options``), then the
    caller's ``options`` on top (explicit options win); only metrics in ``metrics`` get an
    entry. ``None`` when there is nothing to set.

    Example:
        >>> representation_options("indices", ["mig", "sap"])
        {'mig': {'estimator': 'discrete'}}
        >>> representation_options("mean", ["mig"], {"mig": {"n_bins": 10}, "dci": {}})
        {'mig': {'n_bins': 10}}
    """
    merged: dict[str, dict[str, Any]] = {}
    for name in metrics:
        base = METRICS[name].index_options if kind in LABEL_KINDS else {}
        entry = {**base, **dict((options or {}).get(name) or {})}
        if entry:
            merged[name] = entry
    return merged or None


@dataclass(frozen=True)
class EvaluationSet:
    """The factor configurations a model is scored on, and where their images come from.

    Attributes:
        dataset: the :class:`~disentkit.data.FactorDataset` that renders the images.
        factors: integer ``(n_samples, n_factors)``, drawn with
            ``dataset.sample_factors(n_samples, numpy.random.default_rng(seed))``.
        images: uint8 ``(n_samples, H, W, C)`` when rendered up front (a set scored many
            times, as during training); ``None``: rendered batch by batch.
        max_value: the value of a fully-on pixel (255, or 1 for binary datasets).
    """

    dataset: Any
    factors: np.ndarray
    images: np.ndarray | None
    max_value: int

    @classmethod
    def sample(cls, dataset: Any, n_samples: int, seed: int, *,
               render: bool = False) -> EvaluationSet:
        """Draw ``n_samples`` factor configurations with ``seed``; ``render``: their images
        too, once (``n_samples · H · W · C`` bytes)."""
        from disentkit.data.show import max_pixel_value

        factors = np.asarray(dataset.sample_factors(n_samples, np.random.default_rng(seed)))
        images = np.asarray(dataset.images_from_factors(factors)) if render else None
        return cls(dataset, factors, images, max_pixel_value(dataset))

    def __len__(self) -> int:
        return int(self.factors.shape[0])

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """uint8 image batches ``(B, H, W, C)`` in the order of :attr:`factors`."""
        for lo in range(0, len(self), batch_size):
            if self.images is not None:
                yield self.images[lo:lo + batch_size]
            else:
                yield self.dataset.images_from_factors(self.factors[lo:lo + batch_size])


def extract_representations(
    model: Any,
    eval_set: EvaluationSet,
    kinds: Sequence[str],
    *,
    batch_size: int = 256,
    seed: int = 0,
    on_batch: Callable[[Any], None] | None = None,
) -> dict[str, np.ndarray]:
    """Encode the images of ``eval_set``: ``kind`` → float64 latents ``(n_samples, D)``.

    Batches of ``batch_size`` images go through ``model.representation(x, kind)`` for each
    kind, on the device of the model's parameters, under ``torch.inference_mode()``, with
    torch's RNG forked (the caller's state is restored afterwards, CUDA included) and seeded
    with ``seed`` (sampled representations are reproducible). ``on_batch(x)`` is called with
    each float batch ``(B, C, H, W)`` after its representations, inside the same context.
    The model's train/eval mode is the caller's choice.
    """
    import torch

    from disentkit.data.torch import to_float

    dev = next(model.parameters()).device
    reps: dict[str, list[np.ndarray]] = {k: [] for k in kinds}
    fork_devices = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), torch.inference_mode():
        torch.manual_seed(seed)
        for images in eval_set.batches(batch_size):
            x = to_float(images, dev, max_value=eval_set.max_value)  # (B, C, H, W) in [0, 1]
            for k in kinds:
                reps[k].append(model.representation(x, k).double().cpu().numpy())
            if on_batch is not None:
                on_batch(x)
    return {k: np.concatenate(v, axis=0) for k, v in reps.items()}  # (n_samples, D) each


def run_data(run_dir: Path, record: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The dataset name and options a saved model was trained on: from its ``model.json``
    record, else from the run's ``config.json``."""
    if record.get("data"):
        return str(record["data"]), dict(record.get("data_options") or {})
    config_path = RunDir(run_dir).config
    if config_path.is_file():
        config = read_json(config_path)
        return str(config["data"]), dict(config.get("data_options") or {})
    raise ValueError(f"{str(run_dir)!r}: neither {MODEL_JSON_NAME} nor {CONFIG_NAME} names the "
                     "dataset")


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

    from disentkit._version import __version__
    from disentkit.data import get_dataset
    from disentkit.data.torch import to_float
    from disentkit.metrics import active_latents, check_metric_options, default_suite, evaluate
    from disentkit.models.saved import load_model, read_model_info

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
        data_name, data_options = run_data(path, record)
        dataset = get_dataset(data_name, **data_options)
        c, h, w = (int(v) for v in record.get("image_shape") or (0, 0, 0))
    kinds = [k for k in model.representation_kinds if k in SCORED_KINDS]
    if not kinds:
        raise ValueError(
            f"model {record['model']!r} offers no representation metrics can score "
            f"(offers {list(model.representation_kinds)}; scored: {list(SCORED_KINDS)})"
        )

    eval_set = EvaluationSet.sample(dataset, n_samples, int(seed))
    factors, max_value = eval_set.factors, eval_set.max_value
    means: list[np.ndarray] = []
    logvars: list[np.ndarray] = []
    totals = {"bce": 0.0, "mse": 0.0, "n_pixels": 0}
    fork_devices = [dev] if dev.type == "cuda" else []

    def reconstruction(x: Any) -> None:
        out = model(x)
        enc = out.encoding
        if enc.logvar is not None:
            mean = enc.mean if enc.mean is not None else enc.z
            means.append(mean.double().cpu().numpy())
            logvars.append(enc.logvar.double().cpu().numpy())
        logits = out.logits.float()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
        mse = (torch.sigmoid(logits) - x).pow(2)
        totals["bce"] += float(bce.sum())
        totals["mse"] += float(mse.sum())
        totals["n_pixels"] = int(x[0].numel())

    reps = extract_representations(model, eval_set, kinds, batch_size=batch_size,
                                   seed=int(seed), on_batch=reconstruction)
    bce_sum, mse_sum, n_pixels = totals["bce"], totals["mse"], int(totals["n_pixels"])

    def representation_fn(kind: str) -> Callable[[np.ndarray], np.ndarray]:
        def encode(observations: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                x = to_float(np.asarray(observations), dev, max_value=max_value)
                return model.representation(x, kind).double().cpu().numpy()

        encode.__qualname__ = f"{record['model']}.representation[{kind}]"
        return encode

    results: dict[str, Any] = {}
    for k in kinds:
        latents = reps[k]  # (n_samples, D)
        entry: dict[str, Any] = {"n_latents": int(latents.shape[1]), "scores": {},
                                 "metrics": {}}
        if array_names:
            ev = evaluate(latents, factors, metrics=array_names, mode=mode, seed=int(seed),
                          options=representation_options(k, array_names, user_options),
                          n_bootstrap=int(n_bootstrap), baselines=bool(baselines),
                          progress=None if progress is None else (
                              lambda label, k=k: progress(f"{k}: {label}")))
            entry["scores"].update(ev.to_dict())
            entry["metrics"].update(ev.to_json()["metrics"])
        for info in sampling:
            if progress is not None:
                progress(f"{k}: {info.name}")
            sampling_options = {**(info.fast_options if mode == "fast" else {}),
                                **(representation_options(k, [info.name], user_options) or {}
                                   ).get(info.name, {})}
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
    return jsonable(payload)
