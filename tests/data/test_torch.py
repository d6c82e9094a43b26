"""The PyTorch batch loader: batches are a pure function of (seed, step)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from disentkit.data import DatasetSource, FactorDataset, get_dataset  # noqa: E402
from disentkit.data.torch import (  # noqa: E402
    FactorBatchLoader,
    as_representation,
    batch_indices,
    to_float,
)


class Codes(FactorDataset):
    """Tiny grid whose 2×3 RGB images encode their index and factors pixel by pixel."""

    name = "codes"
    factor_names = ("a", "b", "c")
    factor_sizes = (3, 4, 5)
    image_shape = (2, 3, 3)
    source = DatasetSource(name="codes", kind="procedural", version="test")

    def images_from_factors(self, factors: object) -> np.ndarray:
        f = self.check_factors(factors)
        idx = self.index(f)
        out = np.zeros((len(f), 2, 3, 3), np.uint8)
        out[:, 0, :, :] = (f * 50)[:, :, None]  # row 0: factor k in column k
        out[:, 1, :, :] = idx[:, None, None]  # row 1: the index
        return out


class OnlyFirstValue(Codes):
    """Overrides sample_factors: factor ``a`` is always 0."""

    def sample_factors(self, n, rng=None):
        f = super().sample_factors(n, rng)
        f[:, 0] = 0
        return f


class FloatImages(Codes):
    def images_from_factors(self, factors):
        return super().images_from_factors(factors).astype(np.float32)


@pytest.fixture(scope="module")
def codes() -> Codes:
    return Codes()


@pytest.fixture(scope="module")
def shapes() -> FactorDataset:
    return get_dataset("shapes3d_procedural", image_size=8, cache_dir=False)


def _stack(batches):
    images, factors = zip(*batches, strict=True)
    return torch.stack(images), torch.stack(factors)


# --------------------------------------------------------------------------- indices


@pytest.mark.parametrize("seed", [0, 7, 2**40])
def test_uniform_indices_are_default_rng_of_seed_and_step(seed):
    for step in (0, 1, 13):
        expected = np.random.default_rng([seed, step]).integers(0, 60, 8)
        np.testing.assert_array_equal(batch_indices(60, 8, seed, step), expected)


def test_epoch_sampling_visits_every_index_once_per_epoch():
    n, b = 23, 5  # batches straddle epoch boundaries
    seq = np.concatenate([batch_indices(n, b, 3, t, sampling="epoch") for t in range(14)])
    for e in range(3):
        assert sorted(seq[e * n : (e + 1) * n].tolist()) == list(range(n))
    assert not np.array_equal(seq[:n], seq[n : 2 * n])  # a new permutation each epoch
    # pure: out of order, each call on its own, gives the same batches
    again = [batch_indices(n, b, 3, t, sampling="epoch") for t in (9, 2, 13)]
    for got, t in zip(again, (9, 2, 13), strict=True):
        np.testing.assert_array_equal(got, seq[t * b : (t + 1) * b])


def test_epoch_sampling_with_batches_larger_than_the_dataset():
    seq = np.concatenate([batch_indices(4, 10, 0, t, sampling="epoch") for t in range(2)])
    for e in range(5):
        assert sorted(seq[4 * e : 4 * e + 4].tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "len"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"step": -2}, "step"),
        ({"step": 1.0}, "step"),
        ({"sampling": "shuffle"}, "sampling"),
    ],
)
def test_batch_indices_rejects_bad_input(kwargs, match):
    args = {"n": 10, "batch_size": 4, "seed": 0, "step": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        batch_indices(**args)


# --------------------------------------------------------------------------- loader


@pytest.mark.parametrize("sampling", ["uniform", "epoch", "factors"])
def test_batch_is_a_pure_function_of_seed_and_step(codes, sampling):
    a = FactorBatchLoader(codes, 16, seed=4, sampling=sampling)
    b = FactorBatchLoader(codes, 16, seed=4, sampling=sampling)
    first = a.batch(5)
    for step in (9, 0, 3):  # other batches in between change nothing
        a.batch(step)
    for x, y, z in zip(first, a.batch(5), b.batch(5), strict=True):
        assert torch.equal(x, y) and torch.equal(x, z)
    assert not torch.equal(a.batch(6)[1], first[1])  # another step
    other = FactorBatchLoader(codes, 16, seed=5, sampling=sampling)
    assert not torch.equal(other.batch(5)[1], first[1])  # another seed


def test_batches_match_the_dataset_and_indices(codes):
    loader = FactorBatchLoader(codes, 32, seed=1, sampling="uniform")
    images, factors = loader.batch(2)
    idx = loader.indices(2)
    np.testing.assert_array_equal(idx, np.random.default_rng([1, 2]).integers(0, 60, 32))
    np.testing.assert_array_equal(images.numpy(), codes.images(idx))
    np.testing.assert_array_equal(factors.numpy(), codes.factors(idx))
    np.testing.assert_array_equal(images[:, 1, 0, 0].numpy(), idx)  # image encodes its index


def test_shapes_and_dtypes(shapes):
    loader = FactorBatchLoader(shapes, 12, seed=0, steps=2)
    for images, factors in loader:
        assert images.dtype == torch.uint8 and tuple(images.shape) == (12, 8, 8, 3)
        assert factors.dtype == torch.int64 and tuple(factors.shape) == (12, 6)
        assert (factors >= 0).all() and (factors < torch.tensor(shapes.factor_sizes)).all()
        np.testing.assert_array_equal(
            images.numpy(), shapes.images_from_factors(factors.numpy())
        )
    assert len(loader) == 2


def test_resume_gives_the_batches_of_an_uninterrupted_run(codes):
    full = list(FactorBatchLoader(codes, 8, seed=3, steps=10))
    assert len(full) == 10
    resumed = list(FactorBatchLoader(codes, 8, seed=3, steps=10, start_step=6))
    assert len(resumed) == 4
    for (xa, fa), (xb, fb) in zip(full[6:], resumed, strict=True):
        assert torch.equal(xa, xb) and torch.equal(fa, fb)
    loader = FactorBatchLoader(codes, 8, seed=3)  # endless; iterate a window of it
    window = list(loader.iterate(4, 7))
    for (xa, fa), (xb, fb) in zip(full[4:7], window, strict=True):
        assert torch.equal(xa, xb) and torch.equal(fa, fb)
    endless = iter(loader)
    for xa, _ in full[:3]:
        assert torch.equal(next(endless)[0], xa)
    with pytest.raises(TypeError, match="no length"):
        len(loader)


@pytest.mark.parametrize("sampling", ["uniform", "epoch"])
def test_workers_give_the_same_batches(shapes, sampling):
    kwargs = {"seed": 2, "steps": 9, "start_step": 2, "sampling": sampling}
    alone = _stack(FactorBatchLoader(shapes, 16, num_workers=0, **kwargs))
    pooled = _stack(FactorBatchLoader(shapes, 16, num_workers=2, **kwargs))
    assert alone[0].shape == (7, 16, 8, 8, 3)
    assert torch.equal(alone[0], pooled[0]) and torch.equal(alone[1], pooled[1])


def test_iterating_with_workers_leaves_the_global_torch_rng_alone(codes):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    list(FactorBatchLoader(codes, 4, steps=2, num_workers=1))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_auto_sampling_follows_an_overridden_sample_factors(codes):
    assert FactorBatchLoader(codes, 4).sampling == "uniform"
    ds = OnlyFirstValue()
    loader = FactorBatchLoader(ds, 64, seed=0)
    assert loader.sampling == "factors"
    images, factors = loader.batch(0)
    assert (factors[:, 0] == 0).all() and len(torch.unique(factors[:, 2])) > 1
    np.testing.assert_array_equal(images.numpy(), ds.images_from_factors(factors.numpy()))
    np.testing.assert_array_equal(loader.indices(0), ds.index(factors.numpy()))
    # uniform sampling ignores the override
    uniform = FactorBatchLoader(ds, 64, seed=0, sampling="uniform")
    assert (uniform.batch(0)[1][:, 0] > 0).any()


def test_correlated_dataset_gets_factor_sampling(codes):
    sampling = pytest.importorskip("disentkit.data.sampling")
    ds = sampling.with_correlated_factors(codes, (1, 2), sigma=0.05)
    loader = FactorBatchLoader(ds, 256, seed=0)
    assert loader.sampling == "factors"
    f = loader.batch(0)[1].numpy()
    u = f[:, 1] / 3.0 - f[:, 2] / 4.0
    assert np.corrcoef(f[:, 1], f[:, 2])[0, 1] > 0.8 and np.abs(u).mean() < 0.2


def test_device_and_loader_to_float(codes):
    loader = FactorBatchLoader(codes, 4, device="cpu")
    images, factors = loader.batch(0)
    assert images.device.type == "cpu" and factors.device.type == "cpu"
    x = loader.to_float(images)
    assert x.shape == (4, 3, 2, 3) and x.dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"steps": -1}, ValueError, "steps"),
        ({"num_workers": -1}, ValueError, "num_workers"),
        ({"sampling": "random"}, ValueError, "sampling"),
    ],
)
def test_loader_rejects_bad_options(codes, kwargs, error, match):
    with pytest.raises(error, match=match):
        FactorBatchLoader(codes, **kwargs)


def test_loader_rejects_non_datasets_and_non_uint8_images():
    with pytest.raises(TypeError, match="FactorDataset"):
        FactorBatchLoader(np.zeros((4, 2, 2, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        FactorBatchLoader(FloatImages(), 4).batch(0)


def test_importing_disentkit_data_does_not_import_torch():
    code = (
        "import sys, disentkit, disentkit.data, disentkit.data.show, disentkit.cli; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- to_float


def test_to_float_layout_and_range():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    images[0, 0, 0] = (0, 255, 128)
    x = to_float(torch.from_numpy(images), "cpu")
    assert x.shape == (3, 3, 4, 5) and x.dtype == torch.float32 and x.is_contiguous()
    np.testing.assert_allclose(x.numpy(), images.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    np.testing.assert_array_equal(to_float(images).numpy(), x.numpy())  # numpy input
    cl = to_float(images, channels_last=True)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(cl, x)
    assert to_float(images, dtype=torch.float64).dtype == torch.float64


def test_to_float_binary_images():
    binary = np.array([0, 1], np.uint8).reshape(2, 1, 1, 1)
    assert to_float(binary, max_value=1).flatten().tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("images", "kwargs", "error"),
    [
        (np.zeros((2, 3, 3, 3), np.float32), {}, TypeError),
        (np.zeros((3, 3, 3), np.uint8), {}, ValueError),
        ([[1, 2]], {}, TypeError),
        (np.zeros((1, 2, 2, 1), np.uint8), {"max_value": 0}, ValueError),
        (np.zeros((1, 2, 2, 1), np.uint8), {"dtype": torch.int32}, TypeError),
    ],
)
def test_to_float_rejects_bad_input(images, kwargs, error):
    with pytest.raises(error):
        to_float(images, **kwargs)


def test_as_representation_runs_a_torch_encoder(codes):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(18, 4))
    rep = as_representation(net)
    images = codes.images(np.arange(7))
    z = rep(images)
    assert z.shape == (7, 4) and z.dtype == np.float64
    with torch.no_grad():
        expected = net(to_float(images)).double().numpy()
    np.testing.assert_allclose(z, expected, rtol=1e-6)
    with pytest.raises(TypeError, match="torch tensor"):
        as_representation(lambda x: x.numpy())(images)
