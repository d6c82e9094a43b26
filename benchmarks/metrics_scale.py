"""How the MI-based metrics scale: histogram MI matrix at 1,000,000 × 512 latents × 40 factors.

Generates seeded data (float32 latents: some copy one factor, some mix two, the rest are
noise; factors with 2–40 classes), then times, in one process:

1. histogram discretisation (20 equal-width bins per latent, dlib's recipe, exact);
2. factor entropies;
3. every (latent, factor) contingency table and the plug-in MI matrix from them;
4. MIG, modularity and InfoM/InfoC (when ``disentkit.metrics.infomec`` exists), each
   handed that one MI matrix (their time is mostly the input validation each call starts
   with: a finiteness check and label-encoding of the factors; MIG and modularity keep
   float32 latents without a copy;
   InfoMEC runs with infoe=False: the target is InfoM and InfoC); then that
   validation once on its own, for reference;
5. the classic way, as a baseline: ``np.histogram`` + ``np.digitize`` per latent and
   ``sklearn.metrics.mutual_info_score`` per (latent, factor) pair, timed on a random sample
   of latents and pairs and extrapolated to all of them (the output says so).

Prints wall and CPU seconds per stage, the peak RSS after each (``getrusage``), the load
average (the machine may be shared), and the speed-up over the baseline.

Usage::

    python benchmarks/metrics_scale.py            # full size: 1,000,000 × 512 × 40
    python benchmarks/metrics_scale.py --quick    # 100,000 × 64 × 10
    python benchmarks/metrics_scale.py --n 200000 --latents 128 --factors 20
"""

from __future__ import annotations

import argparse
import inspect
import platform
import time
import warnings

import numpy as np
from _common import Stages, load_average, peak_rss_gib, two_core_speedup
from sklearn.metrics import mutual_info_score

from disentkit._validation import prepare
from disentkit.metrics._mi import (
    MutualInfo,
    entropies,
    histogram_codes_t,
    histogram_mutual_info,
)
from disentkit.metrics._threads import n_threads

FACTOR_SIZES = (2, 3, 4, 5, 6, 8, 10, 16, 32, 40)
QUICK = {"n": 100_000, "latents": 64, "factors": 10}
VALIDATION = "input validation (prepare) alone"


def make_data(
    n: int, n_latents: int, n_factors: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded factors ``(n, K)`` int64 and latents ``(n, D)`` float32.

    Latent ``d < K`` encodes factor ``d`` (scaled to [0, 4]) plus unit noise; the next
    ``(D − K) / 2`` latents mix two random factors; the rest are pure noise.
    """
    rng = np.random.default_rng(seed)
    sizes = np.array([FACTOR_SIZES[k % len(FACTOR_SIZES)] for k in range(n_factors)])
    factors = np.empty((n, n_factors), dtype=np.int64)
    for k, s in enumerate(sizes):
        factors[:, k] = rng.integers(0, s, n)
    weights = np.zeros((n_factors, n_latents), dtype=np.float32)  # (K, D)
    single = min(n_factors, n_latents)
    weights[np.arange(single), np.arange(single)] = 4.0
    for d in range(single, single + (n_latents - single) // 2):
        pair = rng.choice(n_factors, size=min(2, n_factors), replace=False)
        weights[pair, d] = rng.uniform(1.0, 3.0, size=pair.size)
    scale = (1.0 / (sizes - 1)).astype(np.float32)  # class index → [0, 1]
    latents = np.empty((n, n_latents), dtype=np.float32)
    step = 2**16
    for start in range(0, n, step):
        stop = min(start + step, n)
        signal = (factors[start:stop] * scale).astype(np.float32) @ weights  # (r, D)
        signal += rng.standard_normal((stop - start, n_latents), dtype=np.float32)
        latents[start:stop] = signal
    return latents, factors, sizes


def classic_baseline(
    latents: np.ndarray,
    factors: np.ndarray,
    n_bins: int,
    n_pairs: int,
    matrix: np.ndarray,
    seed: int,
) -> dict[str, float]:
    """Per-latent ``np.histogram``/``np.digitize`` and per-pair ``mutual_info_score`` on a
    random sample, extrapolated to every latent and pair; also the largest difference from
    ``matrix`` on the sampled pairs."""
    n_latents, n_factors = latents.shape[1], factors.shape[1]
    rng = np.random.default_rng(seed + 1)
    picks = rng.choice(n_latents * n_factors, size=min(n_pairs, n_latents * n_factors),
                       replace=False)
    pairs = [(int(p) // n_factors, int(p) % n_factors) for p in picks]
    used = sorted({d for d, _ in pairs})
    codes = {}
    start = time.perf_counter()
    for d in used:
        column = np.asarray(latents[:, d], dtype=np.float64)
        codes[d] = np.digitize(column, np.histogram(column, bins=n_bins)[1][:-1]) - 1
    per_latent = (time.perf_counter() - start) / len(used)
    worst = 0.0
    start = time.perf_counter()
    for d, k in pairs:
        value = mutual_info_score(codes[d], factors[:, k])
        worst = max(worst, abs(value - matrix[d, k]))
    per_pair = (time.perf_counter() - start) / len(pairs)
    return {
        "latents_timed": len(used),
        "pairs_timed": len(pairs),
        "per_latent_s": per_latent,
        "per_pair_s": per_pair,
        "discretise_s": per_latent * n_latents,
        "pairs_s": per_pair * n_latents * n_factors,
        "total_s": per_latent * n_latents + per_pair * n_latents * n_factors,
        "max_abs_diff": worst,
    }


def _metric_calls(latents, factors, mi, n_bins):
    """(name, zero-argument call) for each MI-based metric that exists."""
    from disentkit.metrics.mig import mig

    calls = [("MIG", lambda: mig(latents, factors, n_bins=n_bins, mi=mi).score)]
    try:
        from disentkit.metrics.modularity import modularity
    except ImportError:
        print("  (modularity not available: skipped)")
    else:
        calls.append(
            (
                "modularity",  # all rows: the shared matrix is of all rows
                lambda: modularity(latents, factors, n_bins=n_bins, mi=mi, rows="all").score,
            )
        )
    try:
        from disentkit.metrics.infomec import infomec
    except ImportError:
        print("  (disentkit.metrics.infomec not available: InfoM/InfoC skipped)")
    else:
        params = inspect.signature(infomec).parameters
        if "mi" not in params or "estimator" not in params:
            print("  (infomec takes no precomputed histogram MI: InfoM/InfoC skipped)")
        else:
            kwargs = {"estimator": "histogram", "mi": mi}
            if "n_bins" in params:
                kwargs["n_bins"] = n_bins
            if "latent_type" in params:  # skip the discrete/continuous detection pass
                kwargs["latent_type"] = "continuous"
            if "infoe" in params:  # the target is InfoM and InfoC; InfoE fits classifiers
                kwargs["infoe"] = False

            def run_infomec():
                res = infomec(latents, factors, **kwargs)
                return f"InfoM {res.infom:.4f}, InfoC {res.infoc:.4f}"

            calls.append(("InfoM + InfoC", run_infomec))
    return calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="samples")
    parser.add_argument("--latents", type=int, default=512, help="latent dimensions D")
    parser.add_argument("--factors", type=int, default=40, help="factors K")
    parser.add_argument("--quick", action="store_true", help="100,000 × 64 × 10")
    parser.add_argument("--bins", type=int, default=20, help="histogram bins per latent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-pairs", type=int, default=24,
                        help="(latent, factor) pairs timed for the classic baseline")
    parser.add_argument("--skip-metrics", action="store_true", help="MI matrix only")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.latents, args.factors = QUICK["n"], QUICK["latents"], QUICK["factors"]
    n, n_latents, n_factors, n_bins = args.n, args.latents, args.factors, args.bins

    print(f"disentkit MI scale benchmark: n={n:,} latents={n_latents} factors={n_factors} "
          f"bins={n_bins} seed={args.seed}")
    print(f"machine: {platform.processor() or platform.machine()}, threads used "
          f"{n_threads()}, load average {load_average()}, numpy {np.__version__}, two-thread "
          f"speedup of a numpy pass {two_core_speedup():.2f}× (2: both cores free)")
    t = time.perf_counter()
    latents, factors, sizes = make_data(n, n_latents, n_factors, args.seed)
    print(f"data: latents float32 {latents.nbytes / 2**30:.2f} GiB, factors int64 "
          f"{factors.nbytes / 2**30:.2f} GiB, classes {sizes.min()}–{sizes.max()} "
          f"(Σ {sizes.sum()}), generated in {time.perf_counter() - t:.1f} s; "
          f"peak RSS {peak_rss_gib():.2f} GiB")

    stages = Stages()
    with stages.time("discretise (histogram codes, uint8)"):
        codes_t = histogram_codes_t(latents, n_bins)  # (D, n)
    with stages.time("factor entropies"):
        h = entropies(factors, sizes)
    with stages.time("contingency tables + MI matrix"):
        matrix = histogram_mutual_info(codes_t, n_bins, factors, sizes)
    del codes_t
    mi = MutualInfo(matrix=matrix, factor_entropy=h, estimator="histogram",
                    options={"n_bins": n_bins}, n_samples=n)
    core = ("discretise (histogram codes, uint8)", "factor entropies",
            "contingency tables + MI matrix")
    core_s = stages.wall(*core)
    core_peak = peak_rss_gib()

    metric_names = []
    if not args.skip_metrics:
        for name, call in _metric_calls(latents, factors, mi, n_bins):
            with warnings.catch_warnings(), stages.time(name, "incl. input validation"):
                warnings.simplefilter("ignore")
                value = call()
            stages.rows[-1].note += f"; {value if isinstance(value, str) else f'{value:.4f}'}"
            metric_names.append(name)
        with stages.time(VALIDATION, "not in the total: what each metric call above repeats"):
            prepare(latents, factors, metric="benchmark")

    print(f"  … classic baseline on a sample ({args.baseline_pairs} pairs)", flush=True)
    base = classic_baseline(latents, factors, n_bins, args.baseline_pairs, matrix, args.seed)

    total = stages.wall(*core, *metric_names)
    ours_mi = stages.wall("discretise (histogram codes, uint8)",
                          "contingency tables + MI matrix")
    print()
    print(stages.table())
    print()
    print(f"MI core (discretise + entropies + MI matrix): {core_s:.2f} s wall, "
          f"peak RSS {core_peak:.2f} GiB")
    print(f"total with metrics: {total:.2f} s wall, peak RSS {peak_rss_gib():.2f} GiB")
    if metric_names:
        print(f"  each metric call starts with input validation: {stages.wall(VALIDATION):.2f} s "
              "when timed alone")
    print(
        f"classic baseline (EXTRAPOLATED from {base['latents_timed']} latents and "
        f"{base['pairs_timed']} pairs): np.histogram+np.digitize {base['per_latent_s']:.3f} s "
        f"per latent × {n_latents} = {base['discretise_s']:.0f} s; "
        f"sklearn mutual_info_score {base['per_pair_s']:.3f} s per pair × "
        f"{n_latents * n_factors} = {base['pairs_s']:.0f} s; total {base['total_s']:.0f} s "
        f"({base['total_s'] / 3600:.2f} h)"
    )
    print(f"speed-up of the MI matrix (discretise + tables + MI) over the classic way: "
          f"{base['total_s'] / ours_mi:.0f}×")
    print(f"largest |MI − sklearn| on the sampled pairs: {base['max_abs_diff']:.1e} nats")
    print(f"load average at the end: {load_average()}; two-thread speedup of a numpy pass "
          f"{two_core_speedup():.2f}×")


if __name__ == "__main__":
    main()
