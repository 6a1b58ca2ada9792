"""The engine's vectorised path-existence check against its plain twin."""

from __future__ import annotations

import numpy as np
from naive_routing import random_snapshot

from meshnet.engine import _path_exists, _paths_exist


def test_paths_exist_equals_loop_twin():
    rng = np.random.default_rng(3)
    snap = random_snapshot(rng, 30, 60)
    paths = []
    for _ in range(200):
        k = int(rng.integers(1, 6))
        walk = [int(rng.integers(0, 30))]
        for _ in range(k - 1):  # mostly real edges, sometimes a random jump
            u = walk[-1]
            nbrs = snap.indices[snap.indptr[u]:snap.indptr[u + 1]] if u < 30 else snap.indices[:0]
            walk.append(int(rng.choice(nbrs)) if nbrs.size and rng.random() < 0.8
                        else int(rng.integers(0, 35)))
        paths.append(walk)
    nodes = np.concatenate([np.array(p, np.int32) for p in paths])
    length = np.array([len(p) for p in paths])
    start = np.cumsum(length) - length
    got = _paths_exist(snap, nodes, start, length)
    ref = np.array([_path_exists(snap, np.array(p, np.int32)) for p in paths])
    assert ref.any() and not ref.all()
    assert np.array_equal(got, ref)
