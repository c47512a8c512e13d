"""Adjacency constructions against upstream values."""

import io
import lzma

import numpy as np
import pytest

from tasar_jax.models import graph


def test_stgcn_hdm05_graph_equals_checkpoint_buffer(upstream):
    torch = pytest.importorskip("torch")
    sd = torch.load(io.BytesIO(lzma.decompress((upstream / "STGCN_hdm05.pth.xz").read_bytes())), weights_only=True)
    np.testing.assert_array_equal(graph.stgcn_spatial_graph("hdm05").astype(np.float32), sd["A"].numpy())


@pytest.mark.parametrize("layout", ["hdm05", "ntu-rgb+d"])
def test_spatial_partition_properties(layout):
    a = graph.stgcn_spatial_graph(layout)
    assert a.shape == (3, 25, 25)
    # the three subsets partition the normalised hop-1 adjacency: every column sums to one
    np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(25))
    # subset 0 is the diagonal only on hop 0 plus same-distance neighbours; self loops live there
    assert np.all(np.diag(a[0]) > 0) and np.all(np.diag(a[1]) == 0) and np.all(np.diag(a[2]) == 0)
    assert np.all((a > 0).sum(axis=0).sum(axis=0) >= 2)  # every joint has itself and a neighbour


def test_normalize_digraph_keeps_zero_columns():
    a = np.array([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(graph.normalize_digraph(a), [[0.5, 0.0], [0.5, 0.0]])


def test_unknown_layout():
    with pytest.raises(ValueError, match="unknown graph layout"):
        graph.stgcn_spatial_graph("openpose")
