"""The shared MI core against trusted references: numpy's histogram, sklearn's plug-in MI,
scipy's entropy, and a per-pair count; plus the code paths only large inputs take
(composite factors, row blocks on threads, int32 count flushes), forced on small ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import mutual_info_score

from disentkit._validation import encode_labels
from disentkit.metrics import _mi, _threads
from disentkit.metrics._mi import (
    contingency,
    contingency_t,
    discrete_codes,
    entropies,
    histogram_codes,
    histogram_codes_t,
    histogram_mutual_info,
    mi_from_contingency,
    mutual_info_matrix,
    plugin_mutual_info,
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ---------------------------------------------------------------------------- references


def dlib_codes(latents: np.ndarray, n_bins: int) -> np.ndarray:
    """disentanglement_lib's discretisation, one column at a time, on float64 values.

    Where ``np.histogram`` refuses a range too narrow for ``n_bins`` distinct float edges,
    its own edges (``linspace`` over the range) still define ``np.digitize``'s codes.
    """
    z = np.asarray(latents, dtype=np.float64)
    out = np.empty(z.shape, dtype=np.int64)
    for d in range(z.shape[1]):
        try:
            edges = np.histogram(z[:, d], bins=n_bins)[1]
        except ValueError:  # "Too many bins for data range"
            edges = np.linspace(z[:, d].min(), z[:, d].max(), n_bins + 1)
        out[:, d] = np.digitize(z[:, d], edges[:-1]) - 1
    return out


def pair_tables(a, a_sizes, b, b_sizes) -> np.ndarray:
    """The stacked contingency table, one (latent, factor) pair at a time."""
    a_off = np.concatenate([[0], np.cumsum(a_sizes)])
    b_off = np.concatenate([[0], np.cumsum(b_sizes)])
    out = np.zeros((a_off[-1], b_off[-1]), dtype=np.int64)
    for d in range(a.shape[1]):
        for k in range(b.shape[1]):
            np.add.at(out, (a_off[d] + a[:, d], b_off[k] + b[:, k]), 1)
    return out


def random_factors(rng, n, sizes):
    return np.stack([rng.integers(0, s, n) for s in sizes], axis=1)


@pytest.fixture
def force_threads(monkeypatch):
    """Run the threaded paths on small inputs: two threads, tiny blocks, tiny tables."""
    monkeypatch.setattr(_threads, "n_threads", lambda: 2)
    monkeypatch.setattr(_threads, "_SERIAL_WORK", 0)
    monkeypatch.setattr(_mi, "_BLOCK_ELEMENTS", 7)
    monkeypatch.setattr(_mi, "_TABLE_CELLS", 24)


# ---------------------------------------------------------------------------- histogram


def _latent_arrays():
    """Columns of assorted scales and offsets, float64 or float32, with ties and constants."""
    shapes = st.tuples(st.integers(1, 40), st.integers(1, 6))
    values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)
    return st.one_of(
        hnp.arrays(np.float64, shapes, elements=values),
        hnp.arrays(np.float32, shapes, elements=values),
        hnp.arrays(np.float64, shapes, elements=st.sampled_from([-1.0, 0.0, 0.1, 0.3, 7.0])),
    )


@SETTINGS
@given(z=_latent_arrays(), n_bins=st.integers(2, 40))
def test_histogram_codes_equal_numpy_histogram_and_digitize(z, n_bins):
    expected = dlib_codes(z, n_bins)
    codes = histogram_codes(z, n_bins)
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(codes, expected)
    np.testing.assert_array_equal(histogram_codes_t(z, n_bins), expected.T)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_bins", [2, 3, 20, 37])
def test_values_exactly_on_edges_and_constant_columns(dtype, n_bins):
    rng = np.random.default_rng(n_bins)
    z = rng.normal(size=(150, 5)).astype(dtype)
    z[0, 1:3], z[1, 1:3] = z[:, 0].min(), z[:, 0].max()  # columns 1, 2 share column 0's range
    edges = np.histogram(z[:, 0].astype(np.float64), bins=n_bins)[1]
    on = edges.astype(dtype)  # float32: the edges rounded to float32
    # Every edge as a value, then the neighbouring representable values on either side.
    z[2 : n_bins + 3, 0] = on
    z[2 : n_bins + 3, 1] = np.nextafter(on, dtype(-np.inf))
    z[2 : n_bins + 3, 2] = np.nextafter(on, dtype(np.inf))
    z[:, 3] = dtype(2.5)  # constant: np.histogram widens the range by ±0.5
    z[:, 4] = np.repeat(on[:-1], 150 // n_bins + 1)[:150]  # only edge values
    z[:2, 1:3] = z[:2, 0:1]  # restore the shared range after the neighbours
    expected = dlib_codes(z, n_bins)
    np.testing.assert_array_equal(histogram_codes(z, n_bins), expected)
    assert set(histogram_codes(z, n_bins)[:, 3].tolist()) == {n_bins // 2}


@pytest.mark.parametrize(
    ("offset", "width"), [(1e6, 1e-3), (-3e7, 1.0), (1e15, 10.0), (0.0, 1e-300)]
)
def test_large_offsets_small_ranges(offset, width):
    """Where the float estimate can be several bins off, the exact correction still wins."""
    rng = np.random.default_rng(0)
    z = offset + width * rng.random((300, 2))
    z[:10, 1] = np.histogram(z[:, 1], bins=20)[1][:10]
    np.testing.assert_array_equal(histogram_codes(z, 20), dlib_codes(z, 20))


@SETTINGS
@given(
    offset=st.floats(-1e12, 1e12),
    log_width=st.floats(-8, 8),
    n_bins=st.integers(2, 64),
    float32=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_edges_and_their_neighbours_at_any_scale(offset, log_width, n_bins, float32, seed):
    dtype = np.float32 if float32 else np.float64
    rng = np.random.default_rng(seed)
    z = (offset + 10.0**log_width * rng.random(3 * (n_bins + 1))).astype(dtype)
    lo, hi = float(z.min()), float(z.max())
    edges = np.linspace(lo, hi, n_bins + 1).astype(dtype)  # np.histogram's edges (lo < hi)
    inner = slice(1, n_bins)  # interior edges keep the range
    z[: n_bins - 1] = edges[inner]
    z[n_bins - 1 : 2 * n_bins - 2] = np.nextafter(edges[inner], dtype(-np.inf))
    z[2 * n_bins - 2 : 3 * n_bins - 3] = np.nextafter(edges[inner], dtype(np.inf))
    z = z.reshape(-1, 1)
    np.testing.assert_array_equal(histogram_codes(z, n_bins), dlib_codes(z, n_bins))


def test_float32_input_is_binned_by_its_float64_values():
    z = np.random.default_rng(1).normal(size=(500, 4)).astype(np.float32)
    np.testing.assert_array_equal(histogram_codes(z, 20), histogram_codes(z.astype(np.float64), 20))


def test_any_memory_layout():
    z = np.random.default_rng(12).normal(size=(64, 5))
    expected = dlib_codes(z, 20)
    np.testing.assert_array_equal(histogram_codes(np.asfortranarray(z), 20), expected)
    np.testing.assert_array_equal(histogram_codes(z[::-1, ::2], 20), expected[::-1, ::2])


def test_integer_input():
    z = np.random.default_rng(2).integers(-5, 9, size=(100, 3))
    np.testing.assert_array_equal(histogram_codes(z, 6), dlib_codes(z, 6))


def test_histogram_codes_threaded_blocks_agree(force_threads):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(101, 5)).astype(np.float32)
    np.testing.assert_array_equal(histogram_codes(z, 20), dlib_codes(z, 20))
    np.testing.assert_array_equal(histogram_codes_t(z, 20), dlib_codes(z, 20).T)


def test_histogram_codes_t_dtype():
    z = np.random.default_rng(4).normal(size=(30, 2))
    assert histogram_codes_t(z, 20).dtype == np.uint8
    assert histogram_codes_t(z, 256).dtype == np.uint8
    assert histogram_codes_t(z, 257).dtype == np.uint16
    np.testing.assert_array_equal(histogram_codes_t(z, 300), dlib_codes(z, 300).T)


def test_histogram_codes_bad_input():
    with pytest.raises(ValueError, match="n_bins"):
        histogram_codes(np.zeros((3, 1)), 1)
    with pytest.raises(ValueError, match="2-D"):
        histogram_codes(np.zeros(3), 2)
    with pytest.raises(ValueError, match="finite"):
        histogram_codes(np.array([[0.0], [np.nan]]), 2)
    with pytest.raises(ValueError, match="finite"):
        histogram_codes(np.array([[0.0], [np.inf]]), 2)


# ---------------------------------------------------------------------------- contingency


@st.composite
def code_pairs(draw):
    n = draw(st.integers(1, 60))
    a_sizes = np.array(draw(st.lists(st.integers(1, 12), min_size=1, max_size=4)))
    b_sizes = np.array(draw(st.lists(st.integers(1, 30), min_size=1, max_size=5)))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return random_factors(rng, n, a_sizes), a_sizes, random_factors(rng, n, b_sizes), b_sizes


@SETTINGS
@given(case=code_pairs(), cells=st.sampled_from([1, 24, 200, 2**17]))
def test_contingency_equals_per_pair_counts(case, cells):
    a, a_sizes, b, b_sizes = case
    old = _mi._TABLE_CELLS
    _mi._TABLE_CELLS = cells  # small budgets: many composites, factors larger than the budget
    try:
        table = contingency(a, a_sizes, b, b_sizes)
        table_t = contingency_t(a.T.copy(), a_sizes, b, b_sizes)
    finally:
        _mi._TABLE_CELLS = old
    expected = pair_tables(a, a_sizes, b, b_sizes)
    assert table.dtype == np.int64
    np.testing.assert_array_equal(table, expected)
    np.testing.assert_array_equal(table_t, expected)


def test_contingency_threads_and_count_flushes(force_threads, monkeypatch):
    """Threads over latents, composites of several factors, and int32 counts flushed into
    int64 every few rows give the same integers as the per-pair count."""
    monkeypatch.setattr(_mi, "_ROWS_PER_COUNT", 7)
    rng = np.random.default_rng(5)
    a_sizes = np.array([3, 20, 1, 5, 7, 2])
    b_sizes = np.array([2, 3, 4, 5, 6, 8, 40, 1])
    a = random_factors(rng, 97, a_sizes)
    b = random_factors(rng, 97, b_sizes)
    expected = pair_tables(a, a_sizes, b, b_sizes)
    np.testing.assert_array_equal(contingency(a, a_sizes, b, b_sizes), expected)
    np.testing.assert_array_equal(
        contingency_t(a.T.astype(np.uint8), a_sizes, b, b_sizes), expected
    )


def test_contingency_public_scatter_path(monkeypatch):
    """Without scipy's compiled kernel the public COO API gives the same table."""
    monkeypatch.setattr(_mi, "_fast_scatter_works", lambda: False)
    rng = np.random.default_rng(6)
    a_sizes, b_sizes = np.array([4, 9]), np.array([3, 5, 2])
    a, b = random_factors(rng, 80, a_sizes), random_factors(rng, 80, b_sizes)
    np.testing.assert_array_equal(
        contingency(a, a_sizes, b, b_sizes), pair_tables(a, a_sizes, b, b_sizes)
    )


def test_fast_scatter_kernel_is_in_use():
    assert _mi._fast_scatter_works()  # scipy ≥ 1.13 ships it; the fallback is tested above


def test_contingency_rejects_codes_out_of_range():
    a = np.array([[0], [3]])
    b = np.array([[0], [1]])
    with pytest.raises(ValueError, match=r"a column 0 must hold codes in \[0, 3\)"):
        contingency(a, np.array([3]), b, np.array([2]))
    with pytest.raises(ValueError, match=r"b column 0 must hold codes in \[0, 1\)"):
        contingency(np.array([[0], [1]]), np.array([2]), b, np.array([1]))
    with pytest.raises(ValueError, match="codes in"):
        contingency(np.array([[-1], [1]]), np.array([2]), b, np.array([2]))
    with pytest.raises(ValueError, match="same rows"):
        contingency(np.zeros((3, 1), int), np.array([1]), b, np.array([2]))
    with pytest.raises(ValueError, match="match its sizes"):
        contingency(np.zeros((2, 2), int), np.array([1]), b, np.array([2]))
    with pytest.raises(TypeError, match="integers"):
        contingency(np.zeros((2, 1)), np.array([1]), b, np.array([2]))
    with pytest.raises(ValueError, match="a_t row 0"):
        contingency_t(np.array([[0, 5]]), np.array([3]), b, np.array([2]))


def test_pack_factors_covers_each_factor_once_within_budget():
    sizes = np.array([2, 3, 4, 5, 6, 8, 10, 16, 32, 40] * 4)
    for max_joint in (1, 7, 64, 6553, 2**20):
        groups = _mi._pack_factors(sizes, max_joint)
        assert sorted(k for g in groups for k in g) == list(range(sizes.size))
        for g in groups:
            assert len(g) == 1 or np.prod(sizes[g]) <= max_joint
            assert list(sizes[g]) == sorted(sizes[g], reverse=True)
    # 20 bins × the default budget: 40 factors need 10 composites, not 40 passes.
    assert len(_mi._pack_factors(sizes, 2**17 // 20)) == 10


def test_marginals_of_a_joint_table():
    rng = np.random.default_rng(7)
    sizes = [5, 3, 1, 2]
    joint = rng.integers(0, 50, size=(4, 30)).astype(np.int32)
    full = joint.reshape(4, *sizes)
    for i, m in enumerate(_mi._marginals(joint, sizes)):
        other = tuple(ax for ax in range(1, 5) if ax != i + 1)
        np.testing.assert_array_equal(m, full.sum(axis=other))


# ---------------------------------------------------------------------------- MI, entropy


@SETTINGS
@given(case=code_pairs())
def test_plugin_mutual_info_equals_sklearn_per_pair(case):
    a, a_sizes, b, b_sizes = case
    mi = plugin_mutual_info(a, a_sizes, b, b_sizes)
    assert mi.shape == (a_sizes.size, b_sizes.size)
    for d in range(a.shape[1]):
        for k in range(b.shape[1]):
            assert mi[d, k] == pytest.approx(mutual_info_score(a[:, d], b[:, k]), abs=1e-12)


@SETTINGS
@given(case=code_pairs())
def test_entropies_equal_scipy(case):
    _, _, b, b_sizes = case
    h = entropies(b, b_sizes)
    for k in range(b.shape[1]):
        counts = np.bincount(b[:, k], minlength=b_sizes[k])
        assert h[k] == pytest.approx(scipy_entropy(counts), abs=1e-12)


def test_closed_form_mi():
    s = np.repeat(np.arange(4), 24)[:, None]  # uniform over 4 classes
    sizes = np.array([4])
    assert plugin_mutual_info(s, sizes, s, sizes)[0, 0] == pytest.approx(np.log(4))
    assert entropies(s, sizes)[0] == pytest.approx(np.log(4))
    half = (s % 2).astype(np.int64)  # a function of s carrying one bit of it
    assert plugin_mutual_info(half, np.array([2]), s, sizes)[0, 0] == pytest.approx(np.log(2))
    independent = np.tile(np.arange(4), 24)[:, None]  # each class of s sees each value 6×
    assert plugin_mutual_info(independent, sizes, s, sizes)[0, 0] == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mutual_info_matrix_histogram_matches_dlib_recipe(dtype, force_threads):
    rng = np.random.default_rng(8)
    sizes = np.array([2, 3, 10, 4])
    factors = random_factors(rng, 300, sizes)
    latents = np.column_stack(
        [factors[:, 2] + rng.normal(size=300), rng.normal(size=300), np.zeros(300)]
    ).astype(dtype)
    mi = mutual_info_matrix(latents, factors, sizes, n_bins=20)
    codes = dlib_codes(latents, 20)
    for d in range(latents.shape[1]):
        for k in range(sizes.size):
            ref = mutual_info_score(codes[:, d], factors[:, k])
            assert mi.matrix[d, k] == pytest.approx(ref, abs=1e-12)
    assert np.all(mi.matrix[2] == 0.0)  # a dead latent carries no information
    np.testing.assert_array_equal(
        mi.matrix, histogram_mutual_info(histogram_codes_t(latents, 20), 20, factors, sizes)
    )
    np.testing.assert_allclose(mi.factor_entropy, entropies(factors, sizes))


def test_mi_from_contingency_matches_plugin():
    rng = np.random.default_rng(9)
    a_sizes, b_sizes = np.array([3, 6]), np.array([2, 5])
    a, b = random_factors(rng, 200, a_sizes), random_factors(rng, 200, b_sizes)
    table = pair_tables(a, a_sizes, b, b_sizes)
    expected = plugin_mutual_info(a, a_sizes, b, b_sizes)
    np.testing.assert_array_equal(mi_from_contingency(table, a_sizes, b_sizes, 200), expected)


def test_permuting_latents_and_relabelling_factors():
    rng = np.random.default_rng(10)
    sizes = np.array([3, 7])
    factors = random_factors(rng, 400, sizes)
    latents = np.column_stack([factors[:, 1] * 0.3 + rng.normal(size=400), rng.normal(size=400)])
    mi = mutual_info_matrix(latents, factors, sizes).matrix
    perm = mutual_info_matrix(latents[:, ::-1], factors, sizes).matrix
    np.testing.assert_allclose(perm, mi[::-1], rtol=0, atol=1e-15)
    relabel = factors.copy()
    relabel[:, 1] = (factors[:, 1] * 3 + 1) % 7  # a bijection of the classes
    np.testing.assert_allclose(
        mutual_info_matrix(latents, relabel, sizes).matrix, mi, rtol=0, atol=1e-12
    )


# ---------------------------------------------------------------------------- discrete


@SETTINGS
@given(
    z=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 4)),
        elements=st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, 3.0]),
    )
)
def test_discrete_codes_equal_label_encoding(z):
    codes, sizes = discrete_codes(z)
    ref_codes, ref_sizes = encode_labels(z)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(sizes, ref_sizes)
    for d in range(z.shape[1]):
        np.testing.assert_array_equal(codes[:, d], np.unique(z[:, d], return_inverse=True)[1])


def test_discrete_estimator_equals_sklearn():
    rng = np.random.default_rng(11)
    sizes = np.array([4, 6])
    factors = random_factors(rng, 500, sizes)
    latents = np.column_stack([factors[:, 0] * 0.5 - 1, rng.integers(-3, 3, 500)]).astype(float)
    mi = mutual_info_matrix(latents, factors, sizes, estimator="discrete").matrix
    for d in range(2):
        for k in range(2):
            labels = np.unique(latents[:, d], return_inverse=True)[1]  # values as labels
            ref = mutual_info_score(labels, factors[:, k])
            assert mi[d, k] == pytest.approx(ref, abs=1e-12)
