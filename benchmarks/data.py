"""How fast the data pipeline delivers training batches, against how fast training eats them.

Measured in one run, on this machine's CPU:

1. **Procedural datasets.** For every registered procedural dataset (default options, 64×64
   images; geometry caches go to a temporary data root), random batches of 64 through
   :class:`disentkit.data.torch.FactorBatchLoader` (``sampling="uniform"``,
   ``num_workers=0``): images per second, after a warm-up batch. Setup (e.g. rendering the
   Shapes3D-like geometry once) is reported apart.
2. **A prepared cache.** A ``.npy`` file of Shapes3D's image shape, uint8
   ``(N, 64, 64, 3)``, written to a temporary folder and memory-mapped like an official
   dataset's ``prepared/images.npy`` (batches read in sorted order, then restored, as the
   official loaders do). The full Shapes3D cache is 480,000 images (5.9 GB); ``--n`` sets a
   smaller N (default 100,000, 1.2 GB) so the benchmark fits modest disks. Random batches of
   64 are timed cold (this file's pages evicted with ``posix_fadvise(DONTNEED)``) and warm
   (file in the page cache), with ``num_workers`` 0 and 2.
3. **Training consumption.** The standard 64×64 convolutional VAE of disentanglement_lib
   (encoder: 4 convolutions 32-32-64-64, kernel 4, stride 2, dense 256, dense 2×10; decoder
   mirrored with transposed convolutions), Bernoulli reconstruction + KL loss, Adam
   (lr 1e-4): forward + backward + optimiser step on batches of 64 on the CPU, with one
   torch thread and with torch's default; images per second. Each data rate is printed
   with its ratio to the faster of the two (target ≥ 10×).
4. **Memory.** A fresh process iterates the memory-mapped cache for ``--rss-batches``
   batches of 64 (default 3,000) and reports its peak RSS (``VmHWM``) and, sampled
   every 100 batches, the largest anonymous memory (the process's own) and file-backed
   resident pages (shared libraries and the mapped cache: page cache shared between
   processes, which the kernel reclaims under pressure). Target: < 1 GB. A plain memory
   map's RSS grows with the part of the file touched (up to the file size); the same run
   is repeated with the map's pages released (``madvise(MADV_DONTNEED)``) every 25
   batches, which bounds it.

Rates are 64 / the median time per batch (or per training step), after warm-up, so that a
busy shared machine distorts them less; the load average is printed.

Usage::

    python benchmarks/data.py                  # N = 100,000; 3,000 batches for RSS
    python benchmarks/data.py --quick          # N = 20,000, fewer batches
    python benchmarks/data.py --n 480000       # the full Shapes3D size (5.9 GB of disk)
"""

from __future__ import annotations

import argparse
import json
import mmap
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

from disentkit.data import DATASETS, DatasetSource, FactorDataset, get_dataset
from disentkit.data.torch import FactorBatchLoader, to_float

BATCH = 64
SHAPE = (64, 64, 3)
QUICK = {"n": 20_000, "batches": 10, "cache_batches": 100, "train_steps": 5, "rss_batches": 500}


# --------------------------------------------------------------------------- the cache


class MappedImages(FactorDataset):
    """A memory-mapped uint8 ``(N, H, W, C)`` ``.npy`` file as a one-factor dataset.

    Reads like the official loaders: a sorted, de-duplicated index into the memory map,
    then the requested order restored. With ``release_every=k`` the map's resident pages
    are released (``madvise(MADV_DONTNEED)``) every ``k`` reads: they stay in the page
    cache, but stop counting towards this process's RSS.
    """

    name = "mapped_cache"
    factor_names = ("index",)

    def __init__(self, path: Path, release_every: int | None = None) -> None:
        self.path = path
        self.release_every = release_every
        self._mm: mmap.mmap | None = None
        self._map: np.ndarray | None = None
        self._reads = 0
        header = np.load(path, mmap_mode="r")  # an np.memmap: shape, dtype, data offset
        assert header.dtype == np.uint8 and header.ndim == 4 and header.flags.c_contiguous
        shape, self._offset = header.shape, int(header.offset)
        del header
        self._shape = tuple(shape)
        self.factor_sizes = (shape[0],)
        self.image_shape = tuple(shape[1:])  # type: ignore[assignment]
        self.source = DatasetSource(name=self.name, kind="official", path=str(path))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_mm": None, "_map": None}  # workers reopen the map

    def _open(self) -> np.ndarray:
        if self._map is None:
            with open(self.path, "rb") as fh:
                self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            n = int(np.prod(self._shape))
            self._map = np.frombuffer(self._mm, np.uint8, n, self._offset).reshape(self._shape)
        return self._map

    def images(self, indices: object) -> np.ndarray:
        idx = self._check_indices(indices)
        uniq, inverse = np.unique(idx, return_inverse=True)
        out = self._open()[uniq][inverse.reshape(-1)]  # (B, H, W, C), a copy
        self._reads += 1
        if self.release_every and self._reads % self.release_every == 0 and self._mm:
            self._mm.madvise(mmap.MADV_DONTNEED)
        return out

    def images_from_factors(self, factors: object) -> np.ndarray:
        return self.images(self.index(factors))


def write_cache(path: Path, n: int, seed: int = 0) -> float:
    """Write a uint8 ``(n, 64, 64, 3)`` ``.npy`` of random images; return the seconds."""
    start = time.perf_counter()
    block = np.random.default_rng(seed).integers(0, 256, (4096, *SHAPE), dtype=np.uint8)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, *SHAPE))
    for a in range(0, n, len(block)):
        b = min(a + len(block), n)
        out[a:b] = block[: b - a]
    out.flush()
    del out
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
    return time.perf_counter() - start


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


def rss_child(path: Path, n_batches: int, release_every: int | None) -> dict[str, Any]:
    """Iterate the cache for ``n_batches`` batches; memory figures in MiB."""
    ds = MappedImages(path, release_every=release_every)
    loader = FactorBatchLoader(ds, BATCH, seed=1, sampling="uniform")
    before = _status_kib("VmRSS")
    anon = file = 0
    start = time.perf_counter()
    total = 0
    for step, (images, _) in enumerate(loader.iterate(0, n_batches)):
        total += int(images[:, 0, 0, 0].sum())  # touch the batch
        if step % 100 == 0:
            anon = max(anon, _status_kib("RssAnon") or 0)
            file = max(file, _status_kib("RssFile") or 0)
    seconds = time.perf_counter() - start
    mib = 1 / 1024
    # VmHWM: this process's own high-water mark (ru_maxrss would carry over the parent's
    # peak through fork and exec).
    peak = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "batches": n_batches,
        "seconds": seconds,
        "rss_after_imports_mib": (before or 0) * mib,
        "peak_rss_mib": peak * mib,
        "max_rss_anon_mib": max(anon, _status_kib("RssAnon") or 0) * mib,
        "max_rss_file_mib": max(file, _status_kib("RssFile") or 0) * mib,
    }


def measure_rss(path: Path, n_batches: int, release_every: int | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--rss-child", str(path), "--rss-batches",
               str(n_batches)]
    if release_every:
        command += ["--release-every", str(release_every)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images in the cache file")
    parser.add_argument("--batches", type=int, default=30,
                        help="timed batches per procedural dataset")
    parser.add_argument("--cache-batches", type=int, default=300,
                        help="timed batches from the cache (cold and warm)")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--rss-batches", type=int, default=3000)
    parser.add_argument("--dir", type=Path, default=None, help="temporary folder parent")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rss-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--release-every", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        print(json.dumps(rss_child(args.rss_child, args.rss_batches, args.release_every)))
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

        path = root / "images.npy"
        written = write_cache(path, args.n)
        gib = path.stat().st_size / 2**30
        print(f"  wrote {path.name}: {args.n:,} × 64×64×3 uint8, {gib:.2f} GiB in "
              f"{written:.1f} s", flush=True)
        cache = MappedImages(path)
        note = f"N = {args.n:,} ({gib:.2f} GiB)"
        if evict(path):
            rate = loader_rate(cache, args.cache_batches, seed=11)
            rows.append(("memory-mapped cache, cold page cache", rate, note))
            print(f"  cache cold: {rate:,.0f} images/s", flush=True)
        warm(path)
        for workers in (0, 2):
            rate = loader_rate(cache, args.cache_batches, workers=workers, seed=12 + workers)
            rows.append((f"memory-mapped cache, warm, {workers} workers", rate, note))
            print(f"  cache warm, {workers} workers: {rate:,.0f} images/s", flush=True)
        rss = {k: measure_rss(path, args.rss_batches, k) for k in (None, 25)}

    print()
    print("| source | images/s | × training | note |")
    print("| --- | ---: | ---: | --- |")
    for t, r in trains.items():
        print(f"| training step (dlib conv VAE, CPU, {t} thread(s)) | {r:,.0f} | "
              f"{r / train:.2f} | forward + backward + Adam |")
    for label, rate, extra in rows:
        print(f"| {label} | {rate:,.0f} | {rate / train:,.1f} | {extra} |")
    print()
    print(f"memory: iterating the cache for {args.rss_batches:,} batches of {BATCH} in a fresh "
          f"process (file-backed pages: libraries and the mapped cache, shared page cache the "
          f"kernel reclaims; sampled every 100 batches)")
    print()
    print("| reader | seconds | peak RSS MiB | after imports MiB | max anonymous MiB | "
          "max file-backed MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for k, r in rss.items():
        label = "memmap" if k is None else f"memmap, madvise(DONTNEED) every {k} batches"
        print(f"| {label} | {r['seconds']:.1f} | {r['peak_rss_mib']:,.0f} | "
              f"{r['rss_after_imports_mib']:,.0f} | {r['max_rss_anon_mib']:,.0f} | "
              f"{r['max_rss_file_mib']:,.0f} |")


if __name__ == "__main__":
    main()
