"""AR1/AR2 assembly, the HDM05 golden sample, properties, caching and the upstream AR file format."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasar_jax.data import formats
from tasar_jax.motion import dynamics
from tests.conftest import fixtures_dir, random_batch


@pytest.fixture(scope="module")
def hdm05_sample():
    path = fixtures_dir() / "tvreg" / "hdm05_sample.npz"
    if not path.exists():
        pytest.fail(f"tvreg fixtures not found at {path.parent}; set TASAR_FIXTURES")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_assemble_reproduces_reference_exactly(hdm05_sample):
    """Upstream's index rules applied to R's own coefficients give the reference arrays bit for bit."""
    ar1, ar2 = dynamics.assemble(hdm05_sample["p2_coef"], hdm05_sample["p1_coef"])  # (3, 25, 1, 60)
    np.testing.assert_array_equal(np.moveaxis(ar1[:, :, 0], -1, 1), hdm05_sample["AR1"])
    np.testing.assert_array_equal(np.moveaxis(ar2[:, :, 0], -1, 1), hdm05_sample["AR2"])


def test_assemble_index_rules():
    a = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, np.nan]])  # T = 5
    b = np.array([0.5, 7.0, 8.0, 9.0])
    ar1, ar2 = dynamics.assemble(a, b)
    np.testing.assert_array_equal(ar1, [0.5, 1.0, 2.0, 3.0, 0.0])
    np.testing.assert_array_equal(ar2, [0.5 * 1 + 10, 1 * 2 + 20, 0.0, 0.0, 0.0])  # NaN lag 2 → 0


def test_hdm05_sample_matches_reference(hdm05_sample):
    x = hdm05_sample["x"][None].astype(np.float32)
    fits = dynamics.motion_fits(x)
    assert fits.ar1.shape == fits.ar2.shape == (1, 3, 60, 25, 1) and fits.ar1.dtype == np.float64
    assert np.max(np.abs(fits.ar1[0, ..., 0] - hdm05_sample["AR1"])) <= 1e-5
    assert np.max(np.abs(fits.ar2[0, ..., 0] - hdm05_sample["AR2"])) <= 1e-5
    for p in (1, 2):
        bw, ref_bw = getattr(fits, f"bw{p}")[0], hdm05_sample[f"p{p}_bw"]
        assert np.max(np.abs(bw - ref_bw) / ref_bw) <= 1e-4
        coef, ref = getattr(fits, f"coef{p}")[0], hdm05_sample[f"p{p}_coef"]
        ref = ref[..., None] if p == 1 else ref
        np.testing.assert_array_equal(np.isnan(coef), np.isnan(ref))
        assert np.nanmax(np.abs(coef - ref)) <= 1e-5


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.sampled_from([4, 9]), persons=st.sampled_from([1, 2]), value=st.floats(-2, 2))
def test_no_nan_for_zero_or_constant_series(frames, persons, value):
    x = random_batch(n=1, t=frames, m=persons, seed=3)
    x[0, 0] = 0.0  # all-zero coordinate (an absent person)
    x[0, 1] = np.float32(value)  # constant coordinate
    ar1, ar2 = dynamics.motion_arrays(x, bandwidth=0.5)
    assert ar1.shape == ar2.shape == (1, 3, frames, 25, persons)
    assert np.all(np.isfinite(ar1)) and np.all(np.isfinite(ar2))
    assert np.all(ar1[0, 0] == 0) and np.all(ar2[0, 0] == 0)
    assert np.all(ar1[..., -1, :, :] == 0) and np.all(ar2[..., -2:, :, :] == 0)  # no future frame


@pytest.mark.parametrize("persons", [1, 2])
def test_cross_validated_shapes_short_series(persons):
    x = random_batch(n=1, t=9, m=persons, seed=1)
    x[0, 0], x[0, 1] = 0.0, 0.3  # all-zero and constant coordinates through the cross-validated path
    fits = dynamics.motion_fits(x)
    assert fits.ar1.shape == (1, 3, 9, 25, persons) and fits.coef2.shape == (1, 3, 25, persons, 7, 2)
    assert np.all(np.isfinite(fits.ar1)) and np.all(np.isfinite(fits.ar2))
    assert np.all((fits.bw1 >= 5 / 8 - 1e-12) & (fits.bw1 <= 20))
    assert np.all(fits.ar1[0, 0] == 0) and np.all(np.isnan(fits.coef2[0, 1, ..., 1]))  # R's NA for a constant lag 2


def test_batch_independence_and_chunking():
    x = random_batch(n=3, t=60, m=2, seed=2)
    together = dynamics.motion_arrays(x, bandwidth=0.4)
    apart = [dynamics.motion_arrays(x[i:i + 1], bandwidth=0.4) for i in range(3)]
    chunked = dynamics.motion_arrays(x, bandwidth=0.4, chunk_size=2)
    for k in range(2):
        np.testing.assert_array_equal(together[k], np.concatenate([a[k] for a in apart]))
        np.testing.assert_array_equal(together[k], chunked[k])


def test_cache_roundtrip_and_invalidation(tmp_path, monkeypatch):
    x = random_batch(n=2, t=60, m=1, seed=4)
    path = tmp_path / "adClassTrain_motion.npz"
    ar1, ar2 = dynamics.cached_motion(x, path, bandwidth=0.4, progress=False)
    stored = dynamics.load_motion(path)
    assert stored["ar1"].dtype == np.float64 and stored["ar1"].shape == (2, 3, 60, 25, 1)
    np.testing.assert_array_equal(stored["ar2"], ar2)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although the cache is valid")

    monkeypatch.setattr(dynamics, "motion_arrays", fail)
    again = dynamics.cached_motion(x, path, bandwidth=0.4, progress=False)
    np.testing.assert_array_equal(again[0], ar1)
    with pytest.raises(AssertionError, match="recomputed"):
        dynamics.cached_motion(x + 1, path, bandwidth=0.4, progress=False)
    with pytest.raises(AssertionError, match="recomputed"):
        dynamics.cached_motion(x, path, bandwidth=0.5, progress=False)


def test_motion_for_dataset_file(tmp_path):
    x = random_batch(n=2, t=60, m=1, seed=5)
    data_path = formats.save_dataset_file(tmp_path / "adClassTrain.npz", x, np.array([0, 1]), "hdm05")
    out = dynamics.motion_for_file(data_path, "hdm05", bandwidth=0.4, chunk_size=1, progress=False)
    assert out == dynamics.default_cache_path(data_path) == tmp_path / "adClassTrain_motion.npz"
    stored = dynamics.load_motion(out)
    expected = dynamics.motion_arrays(formats.load_dataset_file(data_path, "hdm05")[0], bandwidth=0.4)
    np.testing.assert_array_equal(stored["ar1"], expected[0])
    assert not list(tmp_path.glob(".*"))  # the atomic writer left no temporary file


def test_load_upstream_ar_file(upstream):
    ar1, ar2 = dynamics.load_upstream_ar(upstream / "ARmodel_0.npz")
    assert ar1.shape == ar2.shape == (8, 3, 60, 25, 1) and ar1.dtype == np.float64
    with np.load(upstream / "tasar_attack.npz") as attack:
        np.testing.assert_array_equal(ar1[..., 0], attack["AR1"])
        np.testing.assert_array_equal(ar2[..., 0], attack["AR2"])


def test_permute_like_upstream():
    ar = np.arange(5.0)[:, None, None, None, None] * np.ones((5, 3, 4, 25, 1))
    p1, p2, perm = dynamics.permute_like_upstream(ar, -ar, seed=0)
    assert sorted(perm.tolist()) == list(range(5))
    np.testing.assert_array_equal(p1[:, 0, 0, 0, 0], perm)
    np.testing.assert_array_equal(p2, -p1)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="frames"):
        dynamics.motion_arrays(np.zeros((1, 3, 3, 25, 1)))
    with pytest.raises(ValueError, match="NaN"):
        dynamics.motion_arrays(np.full((1, 3, 6, 25, 1), np.nan))
