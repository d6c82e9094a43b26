"""Quantizers: the common contract over the whole registry, then each quantizer's math.

Registry-driven checks (every registered quantizer gets them): shapes and dtypes, exact
round trip ``indices_to_codes(indices) == codes``, finite float32 aux scalars with detached
statistics, a backward pass, float32 math under CPU bfloat16 autocast. Then closed-form
checks: nearest values against brute force, straight-through gradients, where the codebook
gradient comes from, the FSQ index bijection, the VQ EMA formula, dead-code restarts and
perplexity of uniform usage.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from disentkit.quantizers import (
    FSQ,
    QUANTIZERS,
    GlobalScalarQuantizer,
    Quantizer,
    ScalarQuantizer,
    VectorQuantizer,
    build_quantizer,
    usage_stats,
)
from disentkit.registry import UnknownNameError

DIM = 4


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _small(name: str) -> Quantizer:
    """Each registered quantizer at a small size (options a test of the contract needs)."""
    options = {"vq": {"n_codes": 16}, "fsq": {"levels": (5, 4)}}.get(name, {})
    torch.manual_seed(0)
    return build_quantizer(name, DIM, **options)


# -- the contract, for every registered quantizer -------------------------------------------
@pytest.mark.parametrize("name", sorted(QUANTIZERS))
@pytest.mark.parametrize("training", [True, False])
def test_contract(name: str, training: bool) -> None:
    q = _small(name).train(training)
    z = torch.randn(5, 3, DIM, requires_grad=True)
    codes, indices, aux = q(z)
    assert codes.shape == z.shape and codes.dtype == torch.float32
    assert indices.dtype == torch.int64 and indices.shape[:2] == (5, 3)
    assert torch.equal(q.indices_to_codes(indices), codes)
    assert set(q.loss_names) <= set(aux)
    for key, value in aux.items():
        assert value.ndim == 0 and value.dtype == torch.float32, key
        assert torch.isfinite(value), key
        if key not in q.loss_names:
            assert not value.requires_grad, f"statistic {key} requires grad"
    assert 0 <= float(aux["usage"]) <= 1
    assert 1 <= float(aux["perplexity"]) <= q.n_codes + 1e-4
    total = codes.square().sum() + sum(aux[k] for k in q.loss_names)
    total.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_codes_are_exact_codebook_values_and_deterministic(name: str) -> None:
    q = _small(name).eval()
    z = torch.randn(64, DIM)
    first = q(z)
    second = q(z)
    assert torch.equal(first.codes, second.codes)
    assert torch.equal(first.indices, second.indices)
    if name != "fsq":  # codebook quantizers: the codes are fixed points
        assert torch.equal(q(first.codes).indices, first.indices)


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_codebook_access_describes_every_code(name: str) -> None:
    """Exactly one of codebook_values / codebook_vectors, and it holds every code."""
    q = _small(name).eval()
    z = 2 * torch.randn(256, DIM)
    codes, indices, _ = q(z)
    values, vectors = q.codebook_values(), q.codebook_vectors()
    assert (values is None) != (vectors is None), "exactly one kind of codebook"
    if values is not None:
        assert len(values) == DIM
        for j, v in enumerate(values):
            assert v.ndim == 1 and v.dtype == torch.float32 and not v.requires_grad
            assert torch.all(v[1:] >= v[:-1]), "ascending"
            assert torch.isin(codes[:, j], v).all(), f"dimension {j}: a code outside its values"
    else:
        assert vectors.shape == (q.n_codes, DIM) and vectors.dtype == torch.float32
        assert not vectors.requires_grad
        assert torch.equal(vectors[indices], codes)
        assert torch.equal(q.indices_to_codes(torch.arange(q.n_codes)), vectors)


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_float32_under_cpu_bfloat16_autocast(name: str) -> None:
    q = _small(name).eval()
    layer = torch.nn.Linear(DIM, DIM)
    x = torch.randn(256, DIM)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = layer(x)
        assert z.dtype == torch.bfloat16  # the encoder output autocast produced
        codes, indices, aux = q(z)
    assert codes.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in aux.values())
    expected = q(z.float())
    assert torch.equal(indices, expected.indices)
    assert torch.equal(codes, expected.codes)


def test_vq_nearest_search_is_float32_under_autocast() -> None:
    # entries a bfloat16 distance computation cannot tell apart
    q = VectorQuantizer(8, n_codes=64).eval()
    with torch.no_grad():
        q.codebook.copy_(1.0 + 1e-3 * torch.randn(64, 8))
    z = 1.0 + 1e-3 * torch.randn(512, 8)
    plain = q(z).indices
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(q(z).indices, plain)
        # the test can fail: the same search done by autocast's bfloat16 matmul differs
        low = (q.codebook.square().sum(-1) - 2 * z @ q.codebook.T).argmin(-1)
    assert not torch.equal(low, plain)


def test_registry_errors() -> None:
    assert set(QUANTIZERS) >= {"scalar", "global_scalar", "fsq", "vq"}
    with pytest.raises(UnknownNameError, match="known quantizers"):
        build_quantizer("nope", 3)
    with pytest.raises(ValueError, match="valid options"):
        build_quantizer("scalar", 3, levels=4)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        build_quantizer("scalar", 3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="dim must be an integer"):
        build_quantizer("vq", 0)
    with pytest.raises(TypeError, match="floating-point"):
        build_quantizer("fsq", 2)(torch.zeros(2, 2, dtype=torch.long))


# -- scalar codebooks (QLAE) -----------------------------------------------------------------
def test_scalar_init_and_options() -> None:
    q = ScalarQuantizer(3)
    assert torch.allclose(q.values, torch.linspace(-0.5, 0.5, 10).expand(3, -1))
    assert isinstance(q.values, torch.nn.Parameter)
    wide = ScalarQuantizer(2, n_values=5, init_range=(-1, 1))
    assert wide.values[0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    fixed = ScalarQuantizer(2, optimize_values=False)
    assert list(fixed.parameters()) == [] and "values" in fixed.state_dict()
    for bad in [{"n_values": 1}, {"init_range": (1, -1)}, {"init_range": 3}]:
        with pytest.raises(ValueError):
            ScalarQuantizer(2, **bad)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_values=st.integers(2, 12),
    shared=st.booleans(),
)
def test_scalar_nearest_value_matches_brute_force(seed: int, n_values: int, shared: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    cls = GlobalScalarQuantizer if shared else ScalarQuantizer
    q = cls(3, n_values=n_values)
    with torch.no_grad():
        q.values.copy_(torch.randn(q.values.shape, generator=gen))
    z = 2 * torch.randn(50, 3, generator=gen)
    codes, indices, _ = q(z)
    values = q.values.detach().expand(3, -1)
    for j in range(3):
        for i in range(50):
            distances = [abs(float(z[i, j]) - float(v)) for v in values[j]]
            best = min(distances)
            assert distances[int(indices[i, j])] == pytest.approx(best, abs=1e-6)
            assert float(codes[i, j]) == float(values[j, indices[i, j]])


@pytest.mark.parametrize("cls", [ScalarQuantizer, GlobalScalarQuantizer])
def test_scalar_straight_through_and_codebook_gradients(cls: type[ScalarQuantizer]) -> None:
    q = cls(3, n_values=4)
    z = torch.randn(6, 3, requires_grad=True)
    upstream = torch.randn(6, 3)
    codes, indices, aux = q(z)
    (codes * upstream).sum().backward(retain_graph=True)
    assert torch.equal(z.grad, upstream)  # straight-through: d codes / d z = identity
    assert q.values.grad is None  # the decoder's gradient never reaches the values

    aux["commitment"].backward(retain_graph=True)
    assert q.values.grad is None  # commitment moves only the encoder

    z.grad = None
    aux["quantization"].backward()
    assert z.grad is None or not z.grad.any()  # quantization moves only the values
    # d/dv_jk mean (sg(z) − v_{j, idx})² = −2/N Σ_{i: idx_ij = k} (z_ij − v_jk)
    values = q.values.detach().expand(3, -1)
    expected = torch.zeros(3, 4)
    for i in range(6):
        for j in range(3):
            k = int(indices[i, j])
            expected[j, k] -= 2 / z.numel() * float(z[i, j].detach() - values[j, k])
    if cls.shared:
        expected = expected.sum(0, keepdim=True)
    torch.testing.assert_close(q.values.grad, expected)


def test_scalar_losses_closed_form() -> None:
    q = ScalarQuantizer(2, n_values=3)  # values −0.5, 0, 0.5
    z = torch.tensor([[0.2, -0.4], [0.6, 0.1]])
    codes, _indices, aux = q(z)
    assert codes.tolist() == [[0.0, -0.5], [0.5, 0.0]]
    expected = ((0.2**2) + 0.1**2 + 0.1**2 + 0.1**2) / 4
    assert float(aux["quantization"].detach()) == pytest.approx(expected)
    assert float(aux["commitment"].detach()) == pytest.approx(expected)
    # per-dimension usage: dim 0 uses {1, 2}, dim 1 uses {0, 1} → 4 of 6 values
    assert float(aux["usage"]) == pytest.approx(4 / 6)
    assert float(aux["perplexity"]) == pytest.approx(2.0)


# -- FSQ ---------------------------------------------------------------------------------
def _preimage(q: FSQ, codes: torch.Tensor) -> torch.Tensor:
    """A ``z`` that FSQ maps to ``codes`` ``(N, g)``: invert round and the bound."""
    target = codes * q._half_width  # the rounded integers
    target = target - 0.3 * target.sign()  # inside the bound's open range, same rounding
    return torch.atanh((target + q._offset) / q._half_l) - q._shift


@pytest.mark.parametrize("levels", [(3,), (2, 3), (4, 3, 2), (5, 4), (8, 5, 5)])
def test_fsq_index_bijection(levels: tuple[int, ...]) -> None:
    q = FSQ(len(levels), levels=levels, eps=-1e-3 if 2 in levels else 1e-3)
    n = math.prod(levels)
    assert q.n_codes == n
    every = torch.arange(n).unsqueeze(-1)  # (n, 1)
    codes = q.indices_to_codes(every)  # (n, g)
    assert codes.unique(dim=0).shape[0] == n  # distinct codes for distinct indices
    assert codes.min() >= -1 and codes.max() <= 1
    out = q(_preimage(q, codes))
    assert torch.equal(out.indices, every)  # and back
    assert torch.equal(out.codes, codes)


@pytest.mark.parametrize(
    "options", [{}, {"shift": "tan"}, {"eps": -1e-3}, {"shift": "tan", "eps": -1e-3}]
)
def test_fsq_codes_in_unit_interval_and_every_level_reached(options: dict) -> None:
    levels = (3, 4, 5, 8, 10) if options == {} else (2, 3, 4, 5, 8, 10)
    q = FSQ(len(levels), levels=levels, **options)
    codes, indices, _ = q(6 * torch.randn(20000, len(levels)))
    assert codes.min() >= -1 and codes.max() <= 1
    for j, level in enumerate(levels):
        half = level // 2
        expected = torch.arange(-half, level - half) / half
        torch.testing.assert_close(codes[:, j].unique(), expected)
    assert int(indices.max()) < q.n_codes and int(indices.min()) >= 0


def test_fsq_grouping_and_layout() -> None:
    q = FSQ(6, levels=(4, 3))
    z = torch.randn(7, 6)
    _codes, indices, _ = q(z)
    assert indices.shape == (7, 3)
    for g in range(3):
        single = FSQ(2, levels=(4, 3))(z[:, 2 * g : 2 * g + 2])
        assert torch.equal(indices[:, g], single.indices[:, 0])
    per_dim = FSQ(3, levels=5)
    assert per_dim(torch.randn(2, 3)).indices.shape == (2, 3)
    with pytest.raises(ValueError, match="multiple of len"):
        FSQ(5, levels=(4, 3))
    with pytest.raises(ValueError, match="levels"):
        FSQ(2, levels=(1, 4))
    with pytest.raises(ValueError, match="shift"):
        FSQ(2, shift="sin")
    with pytest.raises(ValueError, match="L = 2"):
        FSQ(2, levels=(2, 5))
    with pytest.raises(ValueError, match="eps must be"):
        FSQ(2, levels=(8, 5), eps=-0.2)


def test_fsq_shift_choice() -> None:
    zero = torch.zeros(1, 2)
    exact = FSQ(2, levels=(4, 5), shift="atanh")
    notebook = FSQ(2, levels=(4, 5), shift="tan")
    assert exact.bound(zero).abs().max() < 1e-7  # atanh: f(0) = 0
    assert notebook.bound(zero)[0, 0].abs() > 1e-6  # tan: f(0) ≠ 0 for even L
    assert notebook.bound(zero)[0, 1] == 0  # odd L: no offset, no shift
    assert not list(exact.state_dict())  # constants only, nothing to save


def test_fsq_straight_through_gradient() -> None:
    q = FSQ(2, levels=(8, 5))
    z = torch.randn(10, 2, requires_grad=True)
    codes, _, aux = q(z)
    codes.sum().backward()
    # d/dz round(f(z))/⌊L/2⌋ with round passed straight through = f'(z)/⌊L/2⌋
    t = torch.tanh(z.detach() + q._shift)
    expected = (1 - t.square()) * q._half_l / q._half_width
    torch.testing.assert_close(z.grad, expected)
    assert q.loss_names == () and set(aux) == {"usage", "perplexity"}


# -- VQ ----------------------------------------------------------------------------------
def test_vq_nearest_matches_brute_force() -> None:
    torch.manual_seed(1)
    q = VectorQuantizer(5, n_codes=33).eval()
    z = torch.randn(200, 5)
    codes, indices, _ = q(z)
    distances = (z.unsqueeze(1) - q.codebook.detach().unsqueeze(0)).square().sum(-1)  # (N, K)
    chosen = distances.gather(1, indices.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(chosen, distances.min(1).values)
    assert torch.equal(codes, q.codebook.detach()[indices])


def test_vq_gradients_and_losses() -> None:
    q = VectorQuantizer(3, n_codes=8)
    z = torch.randn(4, 2, 3, requires_grad=True)
    codes, indices, aux = q(z)
    assert indices.shape == (4, 2) and q.loss_names == ("codebook", "commitment")
    upstream = torch.randn_like(z)
    (codes * upstream).sum().backward(retain_graph=True)
    assert torch.equal(z.grad, upstream) and q.codebook.grad is None
    e = q.codebook.detach()[indices]
    codebook_loss = float(aux["codebook"].detach())
    assert codebook_loss == pytest.approx(float((z.detach() - e).square().mean()))
    assert float(aux["commitment"].detach()) == pytest.approx(codebook_loss)
    aux["commitment"].backward(retain_graph=True)
    assert q.codebook.grad is None
    aux["codebook"].backward()
    assert q.codebook.grad is not None and q.codebook.grad.abs().sum() > 0
    unused = torch.ones(8, dtype=torch.bool)
    unused[indices.unique()] = False
    assert not q.codebook.grad[unused].any()


def test_vq_ema_update_equals_formula() -> None:
    q = VectorQuantizer(2, n_codes=3, ema=True, decay=0.9, eps=1e-2)
    assert q.loss_names == ("commitment",) and not list(q.parameters())
    start = torch.tensor([[0.0, 0.0], [2.0, 2.0], [-3.0, 1.0]])
    q.codebook.copy_(start)
    q.embed_sum.copy_(start)  # m = e·N with N = 1
    # vectors 0, 1 → entry 0; vector 2 → entry 1; entry 2 unused
    z = torch.tensor([[0.1, 0.2], [-0.3, 0.0], [1.5, 2.5]])
    codes, indices, _aux = q.train()(z)
    assert indices.tolist() == [0, 0, 1]
    assert torch.equal(codes, start[indices])  # coded with the codebook before the update
    n = torch.tensor([2.0, 1.0, 0.0])
    sums = torch.stack([z[0] + z[1], z[2], torch.zeros(2)])
    big_n = 0.9 * torch.ones(3) + 0.1 * n
    m = 0.9 * start + 0.1 * sums
    smoothed = (big_n + 1e-2) / (big_n.sum() + 3 * 1e-2) * big_n.sum()
    torch.testing.assert_close(q.cluster_size, big_n)
    torch.testing.assert_close(q.embed_sum, m)
    torch.testing.assert_close(q.codebook, m / smoothed.unsqueeze(-1))
    # eval mode leaves the EMA state alone
    before = {k: v.clone() for k, v in q.state_dict().items()}
    q.eval()(torch.randn(5, 2))
    assert all(torch.equal(before[k], v) for k, v in q.state_dict().items())


def test_vq_dead_code_restart() -> None:
    torch.manual_seed(3)
    q = VectorQuantizer(2, n_codes=6, restart_threshold=1.0).train()
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[0.0, 0.0], [5.0, 5.0]]).repeat(3, 1) + 100)
        q.codebook[0] = 0.0
    z = torch.randn(40, 2) * 0.1  # every vector goes to entry 0
    _, indices, aux = q(z)
    assert set(indices.tolist()) == {0}
    assert float(aux["restarted"]) == 5  # the five unused entries
    assert torch.equal(q.codebook[0].detach(), torch.zeros(2))  # the used one is kept
    for row in q.codebook.detach()[1:]:  # the others are now batch vectors
        assert (z - row).abs().sum(-1).min() == 0
    torch.testing.assert_close(q.cluster_size[1:], torch.ones(5))


def test_vq_restart_tiles_a_small_batch() -> None:
    torch.manual_seed(4)
    q = VectorQuantizer(3, n_codes=10, ema=True, restart_threshold=1.0).train()
    z = torch.randn(2, 3)
    _, indices, aux = q(z)
    assert float(aux["restarted"]) == 10 - len(indices.unique())
    restarted = torch.ones(10, dtype=torch.bool)
    restarted[indices.unique()] = False
    for row in q.codebook[restarted]:  # near a batch vector, noise std 0.01/√3
        assert (z - row).norm(dim=-1).min() < 0.1
    torch.testing.assert_close(q.embed_sum[restarted], q.codebook[restarted])


def test_vq_data_init() -> None:
    torch.manual_seed(5)
    q = VectorQuantizer(2, n_codes=4, init="data").train()
    assert not bool(q.initialized)
    z = torch.randn(32, 2) + 10
    q(z)
    assert bool(q.initialized)
    for row in q.codebook.detach():
        assert (z - row).abs().sum(-1).min() == 0


def test_perplexity_of_uniform_usage() -> None:
    k = 7
    stats = usage_stats(torch.arange(4 * k).remainder(k).unsqueeze(-1), k)
    assert float(stats["perplexity"]) == pytest.approx(k)
    assert float(stats["usage"]) == 1.0
    single = usage_stats(torch.zeros(10, 1, dtype=torch.long), k)
    assert float(single["perplexity"]) == pytest.approx(1.0)
    assert float(single["usage"]) == pytest.approx(1 / k)
    # through a VQ whose batch is its own codebook
    q = VectorQuantizer(3, n_codes=k).eval()
    aux = q(q.codebook.detach().repeat(3, 1)).aux
    assert float(aux["perplexity"]) == pytest.approx(k, rel=1e-5)
    assert float(aux["usage"]) == 1.0


def test_vq_state_dict_round_trip() -> None:
    q = VectorQuantizer(2, n_codes=5, ema=True, restart_threshold=1.0).train()
    q(torch.randn(20, 2))
    other = VectorQuantizer(2, n_codes=5, ema=True, restart_threshold=1.0)
    other.load_state_dict(q.state_dict())
    z = torch.randn(9, 2)
    assert torch.equal(other.eval()(z).indices, q.eval()(z).indices)
    assert set(q.state_dict()) == {"codebook", "embed_sum", "cluster_size", "initialized"}
