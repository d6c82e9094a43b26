"""The default metric suite against the classic way, measured in the same run.

Data: 10,000 samples × 10 latents × 5 factors (seeded; factors with 4–12 classes; latents
mix the factors with noise, plus a dead latent). For each metric of the default suite:

- **classic**: the field's reference recipe — one scikit-learn call per (latent, factor)
  pair, one classifier per factor, serial (``benchmarks/_classic.py``);
- **reference**: ``disentkit.evaluate(..., mode="reference")`` — values must equal the
  classic ones (the largest difference is printed);
- **fast**: ``mode="fast"`` — values within the tolerance each fast option states.

Prints seconds per metric, the ratios, and the whole-suite totals; then the fast suite
timed as one ``evaluate`` call, as users run it (the metrics share their MI matrices).
At the start and the end it prints how much of a second core the process gets
(``_common.two_core_speedup``): the fast suite uses both cores and the classic suite one,
so another job on the host slows the fast suite more, and a VM's load average may not show
it. At the end it prints the share of CPU ticks the host took from this machine while each
variant was timed (the "steal" of ``/proc/stat``; Linux only).
Each time is the median of repeated runs of that variant, repeated while fewer than
``--repeat`` runs have been made and they took less than ``--budget`` seconds in all: a
run of a second or two is at the mercy of a moment's load on a shared machine, one of a
minute averages it out, so the long runs (classic and reference DCI) are timed once and
the short ones several times. The same rule applies to all three variants.

Usage::

    python benchmarks/metrics.py               # 10,000 × 10 × 5, n_jobs=-1 as evaluate
    python benchmarks/metrics.py --n 2000      # quicker look
    python benchmarks/metrics.py --n-jobs 1    # disentkit on one core
"""

from __future__ import annotations

import argparse
import time
import warnings

import _classic as classic
import numpy as np
from _common import StealMeter, load_average, two_core_speedup
from sklearn.exceptions import ConvergenceWarning

from disentkit import DisentkitWarning, evaluate
from disentkit.metrics import default_suite

FACTOR_SIZES = (4, 6, 8, 10, 12)


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in FACTOR_SIZES], axis=1)
    scaled = factors / (np.array(FACTOR_SIZES) - 1)  # (n, 5) in [0, 1]
    mix = np.eye(5, 9) + 0.3 * rng.standard_normal((5, 9))  # mostly one factor per latent
    latents = scaled @ mix + 0.05 * rng.standard_normal((n, 9))
    latents = np.concatenate([latents, np.zeros((n, 1))], axis=1)  # a dead latent
    return latents, factors


def classic_scores(name: str, z: np.ndarray, s: np.ndarray, ref) -> dict[str, float]:
    """The classic recipe's numbers, keyed like disentkit's scores (``ref``: disentkit's
    reference result, for the per-factor classifier seeds)."""
    if name == "mig":
        return {"score": classic.mig(z, s)}
    if name == "dci":
        return classic.dci(z, s, ref.options["random_states"])
    if name == "sap":
        return {"score": classic.sap_discrete(z, s)}
    if name == "modularity":  # dlib: MI on its training sample only (the train split)
        n_train = ref.options["n_train"]
        return {"score": classic.modularity(z[:n_train], s[:n_train])}
    if name == "explicitness":
        return classic.explicitness(z, s)
    if name == "unsupervised":
        return classic.unsupervised(z)
    if name == "infomec":
        infom, infoc = classic.infom_infoc(classic.infomec_nmi(z, s), z)
        return {"infom": infom, "infoc": infoc, "infoe": classic.infoe(z, s)}
    raise KeyError(name)


def timed(fn, repeat: int = 1, budget: float = 0.0, steal: StealMeter | None = None):
    """``fn()``'s output and the median seconds of its runs: at least one, then more while
    fewer than ``repeat`` were made and all of them took under ``budget`` seconds. The
    host's stolen CPU ticks during the runs are added to ``steal``."""
    times: list[float] = []
    meter = steal if steal is not None else StealMeter()
    while not times or (len(times) < repeat and sum(times) < budget):
        with meter.measure():
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--metrics", default=None, help="comma-separated subset")
    parser.add_argument("--n-jobs", type=int, default=-1,
                        help="parallel jobs of disentkit's metrics (evaluate's default, -1: "
                             "every core); the values do not depend on it")
    parser.add_argument("--repeat", type=int, default=5,
                        help="time each variant of a metric up to this many times (median)")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="seconds after which a variant is not run again")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DisentkitWarning)
    warnings.simplefilter("ignore", ConvergenceWarning)  # the classic recipe, as it runs
    z, s = make_data(args.n)
    names = args.metrics.split(",") if args.metrics else default_suite()
    print(f"{args.n:,} samples × {z.shape[1]} latents × {s.shape[1]} factors; "
          f"metrics: {', '.join(names)}; n_jobs {args.n_jobs}; median of up to "
          f"{args.repeat} runs within {args.budget:g} s per variant; "
          f"load {load_average()}; two-thread speedup of a numpy pass "
          f"{two_core_speedup():.2f}× (2: both cores free)\n")
    header = (f"{'metric':<13} {'classic s':>10} {'reference s':>12} {'fast s':>8} "
              f"{'ref ×':>7} {'fast ×':>7} {'max |ref−classic|':>18} {'max |fast−ref|':>15}")
    print(header)
    print("-" * len(header))
    totals = {"classic": 0.0, "reference": 0.0, "fast": 0.0}
    rep = {"repeat": args.repeat, "budget": args.budget}
    steal = {k: StealMeter() for k in ("classic", "reference", "fast", "one call")}
    for name in names:
        ref, t_ref = timed(
            lambda n=name: evaluate(z, s, metrics=[n], mode="reference", n_jobs=args.n_jobs),
            **rep, steal=steal["reference"],
        )
        fast, t_fast = timed(
            lambda n=name: evaluate(z, s, metrics=[n], mode="fast", n_jobs=args.n_jobs), **rep,
            steal=steal["fast"],
        )
        cls, t_cls = timed(lambda n=name, r=ref: classic_scores(n, z, s, r.results[n]), **rep,
                        steal=steal["classic"])
        ref_scores = ref.results[name].scores()
        fast_scores = fast.results[name].scores()
        d_ref = max(abs(ref_scores[k] - v) for k, v in cls.items())
        d_fast = max(abs(fast_scores[k] - ref_scores[k]) for k in ref_scores
                     if np.isfinite(ref_scores[k]))
        totals["classic"] += t_cls
        totals["reference"] += t_ref
        totals["fast"] += t_fast
        print(f"{name:<13} {t_cls:>10.2f} {t_ref:>12.2f} {t_fast:>8.2f} "
              f"{t_cls / t_ref:>7.1f} {t_cls / t_fast:>7.1f} {d_ref:>18.2e} {d_fast:>15.3f}",
              flush=True)
    print("-" * len(header))
    print(f"{'suite':<13} {totals['classic']:>10.2f} {totals['reference']:>12.2f} "
          f"{totals['fast']:>8.2f} {totals['classic'] / totals['reference']:>7.1f} "
          f"{totals['classic'] / totals['fast']:>7.1f}")
    # the whole suite as users run it: one evaluate call (MI matrices shared by the metrics)
    _, t_one = timed(lambda: evaluate(z, s, metrics=names, mode="fast", n_jobs=args.n_jobs),
                     **rep, steal=steal["one call"])
    print(f"{'one call':<13} {'':>10} {'':>12} {t_one:>8.2f} {'':>7} "
          f"{totals['classic'] / t_one:>7.1f}   (fast suite as one evaluate() call)")
    print("\nCPU time stolen by the host while timing: "
          + ", ".join(f"{k} {m.text()}" for k, m in steal.items()))
    print(f"load at the end: {load_average()}; two-thread speedup of a numpy pass "
          f"{two_core_speedup():.2f}×")


if __name__ == "__main__":
    main()
