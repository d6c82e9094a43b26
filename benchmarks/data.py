"""How fast the data pipeline delivers training batches, against how fast training eats them.

Measured in one run, on this machine's CPU:

1. **Procedural datasets.** For every registered procedural dataset (default options, 64×64
   images; geometry caches go to a temporary data root), random batches of 64 through
   :class:`disentkit.data.torch.FactorBatchLoader` (``sampling="uniform"``,
   ``num_workers=0``): images per second, after a warm-up batch. Setup (e.g. rendering the
   Shapes3D-like geometry once) is reported apart.
2. **A prepared cache.** A prepared cache of an official dataset (``--cache``, default
   ``shapes3d``: 480,000 × 64×64×3 uint8, 5.9 GB of disk; ``--quick``: ``cars3d``, 17,568
   images, 0.2 GB) with random images, written to a temporary data root with the project's
   own writer (``NpyWriter``, ``meta.json`` last) and opened with ``get_dataset``. Each
   reader — the default options (``reader="auto"``: positional reads into the batch beyond
   512 MiB of images, a memory map below), ``reader="pread"``, ``reader="mmap"`` (the
   earlier default: a memory map) and ``reader="mmap"`` with ``release_pages_every=25`` —
   reads ``--rss-batches`` random batches of 64 (default 300) through ``FactorBatchLoader``
   in a fresh process, cold (the file's pages evicted with ``posix_fadvise(DONTNEED)``) and
   warm (the file read once into the page cache). The rate is images / total seconds (a
   median would hide a memory map's read-ahead stalls on a cold cache); readers alternate
   over ``--repeats`` rounds and each rate is the median of its rounds. The default options
   are also timed warm through 2 workers (64 / median batch time).
3. **Training consumption.** The standard 64×64 convolutional VAE of disentanglement_lib
   (encoder: 4 convolutions 32-32-64-64, kernel 4, stride 2, dense 256, dense 2×10; decoder
   mirrored with transposed convolutions), Bernoulli reconstruction + KL loss, Adam
   (lr 1e-4): forward + backward + optimiser step on batches of 64 on the CPU, with one
   torch thread and with torch's default; images per second. Each data rate is printed
   with its ratio to the faster of the two (target ≥ 10×).
4. **Memory.** The same fresh processes report their peak RSS (``VmHWM``, and
   ``ru_maxrss``: each is started from a small launcher process, whose RSS is where
   ``ru_maxrss`` starts) and, sampled every 25 batches, the largest anonymous memory (the
   process's own) and file-backed resident pages (shared libraries and mapped file pages).
   Target with the default options: < 1 GB. A memory map's RSS grows with the pages touched
   and the kernel's read-ahead around them (up to the file size); positional reads hold
   only the batch.

Other rates are 64 / the median time per batch (or per training step), after warm-up, so
that a busy shared machine distorts them less; the load average is printed.

Usage::

    python benchmarks/data.py                  # full-size Shapes3D cache (5.9 GB of disk)
    python benchmarks/data.py --quick          # the Cars3D-sized cache, fewer batches
    python benchmarks/data.py --cache cars3d   # any official dataset's size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import load_average

from disentkit.data import DATASETS, get_dataset
from disentkit.data._files import NpyWriter, begin_prepared, finish_prepared, grid_factors
from disentkit.data.official_specs import SPECS
from disentkit.data.torch import FactorBatchLoader, to_float

BATCH = 64
SHAPE = (64, 64, 3)
QUICK = {"cache": "cars3d", "batches": 10, "cache_batches": 100, "train_steps": 5,
         "rss_batches": 300, "repeats": 1}
#: the cache's readers: label → get_dataset options
READERS: dict[str, dict[str, Any]] = {
    "default options (reader='auto')": {},
    "reader='pread'": {"reader": "pread"},
    "reader='mmap' (earlier default)": {"reader": "mmap"},
    "reader='mmap', release_pages_every=25": {"reader": "mmap", "release_pages_every": 25},
}


# --------------------------------------------------------------------------- the cache


def write_prepared(root: Path, name: str, seed: int = 0) -> tuple[Path, float]:
    """Write a prepared cache of official dataset ``name`` with random images under data
    root ``root``, with the project's writer; return ``images.npy`` and the seconds."""
    spec = SPECS[name]
    start = time.perf_counter()
    out = begin_prepared(root / name / "prepared")
    size = spec.image_size or 64
    shape = (spec.n_images, size, size, 3)
    block = np.random.default_rng(seed).integers(0, 256, (4096, *shape[1:]), dtype=np.uint8)
    with NpyWriter(out / "images.npy", shape, np.uint8) as w:
        for a in range(0, shape[0], len(block)):
            b = min(a + len(block), shape[0])
            w.array[a:b] = block[: b - a]
        w.commit()
    with NpyWriter(out / "factors.npy", (spec.n_images, len(spec.factor_sizes)),
                   grid_factors(spec.factor_sizes).dtype) as w:
        w.array[:] = grid_factors(spec.factor_sizes)
        w.commit()
    finish_prepared(out, {
        "dataset": name, "sources": [], "factor_names": list(spec.factor_names),
        "factor_sizes": list(spec.factor_sizes), "n_images": spec.n_images,
        "image_shape": list(shape[1:]),
    })
    return out / "images.npy", time.perf_counter() - start


def evict(path: Path) -> bool:
    """Drop this file's pages from the page cache (Linux); ``False`` where unsupported."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(64 << 20):
            pass


# --------------------------------------------------------------------------- timing


def rate_of(seconds: list[float]) -> float:
    """Images per second from per-batch times: 64 / median (robust on a shared machine)."""
    return BATCH / float(np.median(seconds))


def loader_rate(dataset: Any, n_batches: int, *, workers: int = 0, seed: int = 0,
                start_step: int = 0) -> float:
    """Images per second of ``n_batches`` random batches of 64 after warm-up batches.

    With workers the time per batch is the wait between consecutive batches in the
    consuming process (workers run ahead), so it is the delivery rate.
    """
    loader = FactorBatchLoader(dataset, BATCH, seed=seed, sampling="uniform",
                               num_workers=workers)
    it = loader.iterate(start_step, start_step + n_batches + 2 + 2 * workers)
    for _ in range(2 + 2 * workers):  # warm-up: first render, worker start, prefetch
        next(it)
    times = []
    start = time.perf_counter()
    for images, _ in it:
        assert images.shape[0] == BATCH
        now = time.perf_counter()
        times.append(now - start)
        start = now
    return rate_of(times)


def dlib_vae(n_latents: int = 10) -> Any:
    """disentanglement_lib's conv encoder / deconv decoder for 64×64×3 (defined here)."""
    import torch
    from torch import nn

    class ConvVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(
                nn.Conv2d(3, 32, 4, 2, 1), nn.ReLU(),  # (B, 32, 32, 32)
                nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),  # (B, 32, 16, 16)
                nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),  # (B, 64, 8, 8)
                nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),  # (B, 64, 4, 4)
                nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(),
                nn.Linear(256, 2 * n_latents),  # means and log-variances
            )
            self.decoder = nn.Sequential(
                nn.Linear(n_latents, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(),
                nn.Unflatten(1, (64, 4, 4)),
                nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),  # (B, 64, 8, 8)
                nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),  # (B, 32, 16, 16)
                nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),  # (B, 32, 32, 32)
                nn.ConvTranspose2d(32, 3, 4, 2, 1),  # (B, 3, 64, 64) logits
            )

        def loss(self, x: torch.Tensor) -> torch.Tensor:
            mean, log_var = self.encoder(x).chunk(2, dim=1)  # (B, D) each
            z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
            logits = self.decoder(z)
            recon = nn.functional.binary_cross_entropy_with_logits(
                logits, x, reduction="sum") / x.shape[0]
            kl = 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(dim=1).mean()
            return recon + kl

    return ConvVAE()


def training_rate(steps: int, threads: int, seed: int = 0) -> float:
    """Images per second a VAE training step consumes on the CPU with ``threads`` threads."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _training_rate(steps, seed)
    finally:
        torch.set_num_threads(previous)


def _training_rate(steps: int, seed: int) -> float:
    import torch

    torch.manual_seed(seed)
    model = dlib_vae()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    data = get_dataset("xyobject") if "xyobject" in DATASETS else None
    rng = np.random.default_rng(seed)
    if data is not None and data.image_shape == SHAPE:
        batch = data.images(rng.integers(0, len(data), BATCH))
    else:
        batch = rng.integers(0, 256, (BATCH, *SHAPE), dtype=np.uint8)

    def step() -> None:
        x = to_float(batch)  # (B, 3, 64, 64)
        opt.zero_grad(set_to_none=True)
        model.loss(x).backward()
        opt.step()

    for _ in range(3):  # warm-up (the first steps set up kernels and allocator pools)
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return rate_of(times)


# --------------------------------------------------------------------------- memory


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        return None
    return None


def rss_child(root: Path, name: str, n_batches: int, options: dict[str, Any], seed: int
              ) -> dict[str, Any]:
    """Open the cache with ``options`` and read ``n_batches`` random batches: time and
    memory (MiB). The rate is images / total seconds: with a cold page cache a median
    would hide a memory map's read-ahead stalls."""
    ds = get_dataset(name, data_dir=root, **options)
    loader = FactorBatchLoader(ds, BATCH, seed=seed, sampling="uniform")
    before = _status_kib("VmRSS")
    anon = file = 0
    start = time.perf_counter()
    total = 0
    for step, (images, _) in enumerate(loader.iterate(0, n_batches)):
        total += int(images[:, 0, 0, 0].sum())  # touch the batch
        if step % 25 == 0:
            anon = max(anon, _status_kib("RssAnon") or 0)
            file = max(file, _status_kib("RssFile") or 0)
    seconds = time.perf_counter() - start
    mib = 1 / 1024
    # VmHWM: this process's own high-water mark; ru_maxrss also carries the parent's RSS
    # at the fork that started this process (equal when the parent is small).
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = _status_kib("VmHWM") or maxrss
    return {
        "batches": n_batches,
        "seconds": seconds,
        "images_per_s": n_batches * BATCH / seconds,
        "rss_after_imports_mib": (before or 0) * mib,
        "peak_rss_mib": peak * mib,
        "ru_maxrss_mib": maxrss * mib,
        "max_rss_anon_mib": max(anon, _status_kib("RssAnon") or 0) * mib,
        "max_rss_file_mib": max(file, _status_kib("RssFile") or 0) * mib,
    }


#: runs its arguments as a command: the measuring process is started from this small
#: process, so its ru_maxrss (which starts at the RSS of the process that started it) does
#: not carry this benchmark's own RSS
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def measure_rss(root: Path, name: str, n_batches: int, options: dict[str, Any],
                seed: int = 1) -> dict[str, Any]:
    command = [sys.executable, "-c", LAUNCHER, sys.executable, __file__, "--rss-child",
               str(root), "--cache", name, "--rss-batches", str(n_batches), "--rss-options",
               json.dumps(options), "--rss-seed", str(seed)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="shapes3d", choices=sorted(SPECS),
                        help="official dataset whose size the prepared cache has")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds over the readers (the median is reported)")
    parser.add_argument("--batches", type=int, default=30,
                        help="timed batches per procedural dataset")
    parser.add_argument("--cache-batches", type=int, default=300,
                        help="timed batches from the cache (cold and warm)")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--rss-batches", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=None, help="temporary folder parent")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rss-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rss-options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--rss-seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        options = json.loads(args.rss_options)
        print(json.dumps(rss_child(args.rss_child, args.cache, args.rss_batches, options,
                                   args.rss_seed)))
        return
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)

    print(f"# data pipeline benchmark: {platform.processor() or platform.machine()}, "
          f"load {load_average()}, python {platform.python_version()}", flush=True)
    print(f"command: python benchmarks/data.py {' '.join(sys.argv[1:])}".rstrip(), flush=True)
    import torch

    trains = {}
    for threads in sorted({1, torch.get_num_threads()}):
        trains[threads] = training_rate(args.train_steps, threads)
        print(f"training consumption (dlib conv VAE, batch {BATCH}, CPU, {threads} torch "
              f"thread(s)): {trains[threads]:,.0f} images/s", flush=True)
    threads = max(trains, key=trains.get)  # the faster setting is the one to keep fed
    train = trains[threads]

    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="disentkit-bench-") as tmp:
        root = Path(tmp)
        for name, info in list(DATASETS.items()):
            if info.kind != "procedural":
                continue
            start = time.perf_counter()
            ds = get_dataset(name, data_dir=root / "data")
            ds.images(np.arange(1))  # first render (e.g. geometry buffers)
            setup = time.perf_counter() - start
            rate = loader_rate(ds, args.batches)
            shape = "×".join(map(str, ds.image_shape))
            rows.append((f"`{name}` ({shape})", rate, f"setup {setup:.1f} s"))
            print(f"  {name}: {rate:,.0f} images/s", flush=True)

        data_root = root / "cache"
        path, written = write_prepared(data_root, args.cache)
        gib = path.stat().st_size / 2**30
        n_images = SPECS[args.cache].n_images
        print(f"  wrote a prepared {args.cache} cache: {n_images:,} images, {gib:.2f} GiB in "
              f"{written:.1f} s", flush=True)
        note = f"{args.cache} cache, N = {n_images:,} ({gib:.2f} GiB)"
        can_evict = hasattr(os, "posix_fadvise")
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in range(args.repeats):  # readers alternate, so drift hits them alike
            for label, options in READERS.items():
                for state in ("cold", "warm") if can_evict else ("warm",):
                    if state == "cold":
                        evict(path)
                    else:
                        warm(path)
                    out = measure_rss(data_root, args.cache, args.rss_batches, options,
                                      seed=100 * r + 1)
                    runs.setdefault((label, state), []).append(out)
                    print(f"  round {r + 1}, {label}, {state}: "
                          f"{out['images_per_s']:,.0f} images/s, peak RSS "
                          f"{out['peak_rss_mib']:,.0f} MiB", flush=True)
        for (label, state), outs in runs.items():
            rate = float(np.median([o["images_per_s"] for o in outs]))
            rows.append((f"cache, {label}, {state} page cache", rate, note))
        warm(path)
        default = get_dataset(args.cache, data_dir=data_root)
        rate = loader_rate(default, args.cache_batches, workers=2, seed=7)
        rows.append(("cache, default options, warm, 2 workers", rate, note))

    print()
    print("| source | images/s | × training | note |")
    print("| --- | ---: | ---: | --- |")
    for t, r in trains.items():
        print(f"| training step (dlib conv VAE, CPU, {t} thread(s)) | {r:,.0f} | "
              f"{r / train:.2f} | forward + backward + Adam |")
    for label, rate, extra in rows:
        print(f"| {label} | {rate:,.0f} | {rate / train:,.1f} | {extra} |")
    print()
    print(f"memory: {args.rss_batches:,} random batches of {BATCH} from the {args.cache} cache "
          f"in a fresh process per run, largest over the {args.repeats} round(s) "
          f"(file-backed: libraries and mapped file pages; sampled every 25 batches)")
    print()
    print("| reader | page cache | seconds (median) | peak RSS (VmHWM) MiB | ru_maxrss MiB | "
          "after imports MiB | max anonymous MiB | max file-backed MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (label, state), outs in runs.items():
        top = {k: max(o[k] for o in outs) for k in outs[0] if k.endswith("_mib")}
        seconds = float(np.median([o["seconds"] for o in outs]))
        print(f"| {label} | {state} | {seconds:.2f} | {top['peak_rss_mib']:,.0f} | "
              f"{top['ru_maxrss_mib']:,.0f} | {top['rss_after_imports_mib']:,.0f} | "
              f"{top['max_rss_anon_mib']:,.0f} | {top['max_rss_file_mib']:,.0f} |")


if __name__ == "__main__":
    main()
