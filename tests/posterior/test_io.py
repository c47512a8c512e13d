"""Posterior files: upstream head/SWAG files (fixtures C) and our own npz format."""

import json

import numpy as np
import pytest

from tasar_jax.posterior import io as pio
from tasar_jax.posterior.heads import HeadParams, Posterior

KEYS = ("0.weight", "0.bias", "1.weight", "1.bias")


@pytest.fixture(scope="module")
def formats(upstream):
    return np.load(upstream / "appended_head_formats.npz")


def test_head_from_state_dict_accepts_both_key_styles(formats):
    head = pio.head_from_state_dict({k: formats[f"head.{k}"] for k in KEYS})
    for leaf, k in zip(head, KEYS):
        np.testing.assert_array_equal(leaf, formats[f"head.{k}"])
    mean = pio.head_from_state_dict({f"model.{k}": formats[f"swag_mean.model.{k}"] for k in KEYS})
    np.testing.assert_array_equal(mean.w2, formats["swag_mean.model.1.weight"])


def test_head_from_state_dict_errors(formats):
    good = {k: formats[f"head.{k}"] for k in KEYS}
    with pytest.raises(pio.PosteriorFormatError, match="missing"):
        pio.head_from_state_dict({k: v for k, v in good.items() if k != "1.bias"})
    with pytest.raises(pio.PosteriorFormatError, match="expected W"):
        pio.head_from_state_dict({**good, "0.bias": np.zeros(3, np.float32)})


def test_upstream_files_match_their_npz_copies(upstream, formats):
    pytest.importorskip("torch")
    from tasar_jax.converters import posterior_io

    head = posterior_io.read_upstream_head(upstream / "appended_head_0_minValLossAppendedModel.pth")
    mean, sqmean, epoch = posterior_io.read_upstream_swag(upstream / "multi_swag_ep_0.pt")
    assert epoch == int(formats["swag_epoch"])
    for tree, prefix in ((head, "head."), (mean, "swag_mean.model."), (sqmean, "swag_sqmean.model.")):
        for leaf, k in zip(tree, KEYS):
            np.testing.assert_array_equal(leaf, formats[prefix + k])
    tasar = np.load(upstream / "tasar_attack.npz")  # head 0 of B.4 is the head of these files
    np.testing.assert_array_equal(head.w1, tasar["head_W1"][0])
    np.testing.assert_array_equal(mean.b2, tasar["swag_mean_b2"][0])


def test_read_upstream_posterior_folder_layout(upstream, tmp_path):
    pytest.importorskip("torch")
    from tasar_jax.converters import posterior_io

    (tmp_path / "Dual_Bayesian").mkdir()
    for i in range(2):
        (tmp_path / f"{i}_minValLossAppendedModel.pth").write_bytes(
            (upstream / "appended_head_0_minValLossAppendedModel.pth").read_bytes())
        (tmp_path / "Dual_Bayesian" / f"multi_swag_ep_{i}.pt").write_bytes(
            (upstream / "multi_swag_ep_0.pt").read_bytes())
    post = posterior_io.read_upstream_posterior(tmp_path, num_heads=2)
    assert post.heads.w1.shape == (2, 65, 65) and post.sqmean.b1.shape == (2, 65)
    no_swag = posterior_io.read_upstream_posterior(tmp_path, num_heads=2, swag=False)
    np.testing.assert_array_equal(no_swag.mean.w1, post.heads.w1)
    with pytest.raises(Exception, match="no such"):
        posterior_io.read_upstream_posterior(tmp_path, num_heads=3)


def _posterior(k=3, c=5, seed=0):
    rng = np.random.default_rng(seed)

    def tree():
        return HeadParams(*(rng.normal(size=s).astype(np.float32) for s in ((k, c, c), (k, c), (k, c, c), (k, c))))

    return Posterior(tree(), tree(), tree())


def test_save_load_roundtrip(tmp_path):
    post = _posterior()
    path = pio.save_posterior(tmp_path / "sub" / "posterior.npz", (post,), dataset="hdm05",
                              surrogate_checkpoint=tmp_path / "stgcn", swa_n=300)
    (loaded,), meta = pio.load_posterior(path)
    for a, b in zip(loaded, post):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert meta["num_heads"] == 3 and meta["num_classes"] == 5 and meta["dataset"] == "hdm05"
    assert meta["surrogate_checkpoint"] == str(tmp_path / "stgcn") and meta["swa_n"] == 300
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["posterior.npz"]  # no temporary left behind
    json.dumps(meta)


def test_two_stream_pair_roundtrip(tmp_path):
    pair = (_posterior(seed=1), _posterior(seed=2))
    loaded, meta = pio.load_posterior(pio.save_posterior(tmp_path / "p.npz", pair, dataset="ntu60"))
    assert meta["streams"] == ["joint", "bone"] and meta["num_heads"] == 3 and len(loaded) == 2
    for got, want in zip(loaded, pair):
        assert isinstance(got, Posterior)
        for a, b in zip(got, want):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)


def test_a_bare_posterior_is_not_a_per_stream_tuple(tmp_path):
    with pytest.raises(TypeError, match="per-stream tuple"):
        pio.save_posterior(tmp_path / "p.npz", _posterior())
    assert not list(tmp_path.iterdir())


def test_load_errors(tmp_path):
    with pytest.raises(pio.PosteriorFormatError, match="no such"):
        pio.load_posterior(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(pio.PosteriorFormatError, match="readable"):
        pio.load_posterior(tmp_path / "bad.npz")
    np.savez(tmp_path / "partial.npz", **{"heads.w1": np.zeros((1, 2, 2))})
    with pytest.raises(pio.PosteriorFormatError, match="missing entries"):
        pio.load_posterior(tmp_path / "partial.npz")
