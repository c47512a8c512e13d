"""Skeleton adjacency constructions in pure numpy (reference.md §2.1).

Every matrix follows the upstream convention ``A[j, i] = 1`` for an edge ``(i, j)``, and column normalisation
``normalize_digraph(A) = A · diag(1 / column sums)`` (columns summing to zero stay zero).
"""

from __future__ import annotations

import numpy as np

from tasar_jax.data import layouts


def edge2mat(edges, num_nodes: int) -> np.ndarray:
    """(V, V) matrix with ``A[j, i] = 1`` for every pair ``(i, j)``."""
    a = np.zeros((num_nodes, num_nodes))
    for i, j in edges:
        a[j, i] = 1
    return a


def normalize_digraph(a: np.ndarray) -> np.ndarray:
    """``A · diag(1 / column sums)``; zero columns are left at zero."""
    col = a.sum(axis=0)
    inv = np.divide(1.0, col, out=np.zeros_like(col), where=col > 0)
    return a @ np.diag(inv)


def hop_distance(num_nodes: int, edges, max_hop: int = 1) -> np.ndarray:
    """Hop distance between joints (``inf`` beyond ``max_hop``) of the undirected graph with self loops."""
    a = np.eye(num_nodes)
    for i, j in edges:
        a[i, j] = a[j, i] = 1
    dist = np.full((num_nodes, num_nodes), np.inf)
    reach = [np.linalg.matrix_power(a, d) > 0 for d in range(max_hop + 1)]
    for d in range(max_hop, -1, -1):
        dist[reach[d]] = d
    return dist


def directed_spatial_graph(inward_edges, num_nodes: int) -> np.ndarray:
    """``stack(I, norm(inward), norm(outward))`` (upstream ``tools.get_spatial_graph``), float64 (3, V, V).

    Used by CTR-GCN, FR-Head and 2s-AGCN; inward edges are (child, parent) pairs.
    """
    outward = tuple((j, i) for i, j in inward_edges)
    return np.stack([np.eye(num_nodes), normalize_digraph(edge2mat(inward_edges, num_nodes)),
                     normalize_digraph(edge2mat(outward, num_nodes))])


def stgcn_spatial_graph(layout: str, max_hop: int = 1) -> np.ndarray:
    """ST-GCN's "spatial" partition (root, centripetal, centrifugal), shape (1 + 2·max_hop, V, V).

    Entry ``[j, i]`` of hop ``h`` goes to root if ``dist(j, c) == dist(i, c)``, to close if ``dist(j, c) >
    dist(i, c)``, else to further, where c is the layout's centre joint; each takes ``normalize_digraph`` of the
    hop-≤max_hop adjacency. Reproduces ``classifiers/stgcn/utils/graph.py`` (layouts ``hdm05``, ``ntu-rgb+d``).
    """
    skeleton = layouts.get_skeleton(layout)
    edges, center = skeleton.edges, skeleton.center
    num_nodes = layouts.NUM_JOINTS
    dist = hop_distance(num_nodes, edges, max_hop)
    adjacency = (dist <= max_hop).astype(float)
    norm = normalize_digraph(adjacency)
    to_center = dist[:, center]
    parts = []
    for hop in range(max_hop + 1):
        on_hop = dist == hop
        # rows j, columns i: compare dist(j, c) with dist(i, c)
        dj, di = to_center[:, None], to_center[None, :]
        root = np.where(on_hop & (dj == di), norm, 0.0)
        close = np.where(on_hop & (dj > di), norm, 0.0)
        further = np.where(on_hop & (dj < di), norm, 0.0)
        if hop == 0:
            parts.append(root)
        else:
            parts.extend([root + close, further])
    return np.stack(parts)
