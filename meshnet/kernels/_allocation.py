"""Numba kernels for bandwidth allocation (private; see :mod:`meshnet.allocation`).

Resources are the directed edges ``0 .. E-1`` followed by one *group* resource per flow
``E .. E+G-1``: a group bounds the summed rate of its subflows (a flow's demand, shared by the
paths it is split over). Every subflow crosses the edges of its path and at most one group.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _sift_down(hkey, hval, pos, size):
    key = hkey[pos]
    val = hval[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and hkey[child + 1] < hkey[child]:
            child += 1
        if hkey[child] >= key:
            break
        hkey[pos] = hkey[child]
        hval[pos] = hval[child]
        pos = child
    hkey[pos] = key
    hval[pos] = val


@njit(cache=True)
def _sift_up(hkey, hval, pos):
    key = hkey[pos]
    val = hval[pos]
    while pos > 0:
        parent = (pos - 1) >> 1
        if hkey[parent] <= key:
            break
        hkey[pos] = hkey[parent]
        hval[pos] = hval[parent]
        pos = parent
    hkey[pos] = key
    hval[pos] = val


@njit(cache=True)
def maxmin_progressive_filling(capacity, sub_indptr, sub_edges, weight, group, group_cap):
    """Weighted max-min fair subflow rates by event-driven progressive filling.

    All unfrozen subflows grow together at ``weight[s] * t`` as the water level ``t`` rises.
    A resource ``r`` saturates at level ``rem[r] / wsum[r]`` (remaining capacity over the
    summed weight of its unfrozen subflows); the resource with the smallest such level is the
    next bottleneck: its subflows are frozen at that level and their rate is taken off every
    other resource they cross. Freezing a subflow at a level no higher than a resource's own
    saturation level can only raise that resource's level, so a lazy min-heap works: an entry
    whose key has gone stale is re-inserted with its current key when it reaches the top.

    Parameters
    ----------
    capacity : float64[E]
        Edge capacities (>= 0; ``inf`` never binds).
    sub_indptr : int64[S+1], sub_edges : int32[nnz]
        Edges crossed by each subflow (CSR).
    weight : float64[S]
        Subflow weights; a subflow with weight <= 0 gets rate 0 and takes nothing.
    group : int32[S]
        Group resource of each subflow (``-1`` for none).
    group_cap : float64[G]
        Capacity of each group (``inf`` for none).

    Returns
    -------
    rate : float64[S]
        ``inf`` for a subflow that no finite resource limits.
    """
    n_edges = capacity.size
    n_sub = weight.size
    n_res = n_edges + group_cap.size

    rem = np.empty(n_res)
    rem[:n_edges] = capacity
    rem[n_edges:] = group_cap
    wsum = np.zeros(n_res)
    cnt = np.zeros(n_res, np.int64)
    rate = np.zeros(n_sub)
    frozen = np.zeros(n_sub, np.bool_)

    # Pass 1: how many live subflows use each resource, and their summed weight.
    for s in range(n_sub):
        w = weight[s]
        if not w > 0.0:
            frozen[s] = True
            continue
        for k in range(sub_indptr[s], sub_indptr[s + 1]):
            e = sub_edges[k]
            cnt[e] += 1
            wsum[e] += w
        g = group[s]
        if g >= 0:
            cnt[n_edges + g] += 1
            wsum[n_edges + g] += w

    # Pass 2: resource -> subflow incidence (transpose CSR), built once.
    rptr = np.empty(n_res + 1, np.int64)
    rptr[0] = 0
    for r in range(n_res):
        rptr[r + 1] = rptr[r] + cnt[r]
    fill = rptr[:-1].copy()
    members = np.empty(rptr[n_res], np.int32)
    for s in range(n_sub):
        if frozen[s]:
            continue
        for k in range(sub_indptr[s], sub_indptr[s + 1]):
            e = sub_edges[k]
            members[fill[e]] = s
            fill[e] += 1
        g = group[s]
        if g >= 0:
            members[fill[n_edges + g]] = s
            fill[n_edges + g] += 1

    # Heap of (saturation level, resource); stale keys are refreshed lazily.
    hkey = np.empty(n_res + 1)
    hval = np.empty(n_res + 1, np.int32)
    size = 0
    for r in range(n_res):
        if cnt[r] > 0 and rem[r] < np.inf:
            hkey[size] = max(rem[r], 0.0) / wsum[r]
            hval[size] = r
            size += 1
    for pos in range(size // 2 - 1, -1, -1):
        _sift_down(hkey, hval, pos, size)

    level = 0.0
    while size > 0:
        key = hkey[0]
        r = hval[0]
        size -= 1
        if size > 0:
            hkey[0] = hkey[size]
            hval[0] = hval[size]
            _sift_down(hkey, hval, 0, size)
        if cnt[r] == 0:
            continue
        cur = max(rem[r], 0.0) / wsum[r]
        if cur > key:
            hkey[size] = cur
            hval[size] = r
            _sift_up(hkey, hval, size)
            size += 1
            continue
        if cur > level:
            level = cur
        for m in range(rptr[r], rptr[r + 1]):
            s = members[m]
            if frozen[s]:
                continue
            frozen[s] = True
            w = weight[s]
            x = w * level
            rate[s] = x
            for k in range(sub_indptr[s], sub_indptr[s + 1]):
                e = sub_edges[k]
                rem[e] -= x
                cnt[e] -= 1
                wsum[e] = wsum[e] - w if cnt[e] > 0 else 0.0
            g = group[s]
            if g >= 0:
                e = n_edges + g
                rem[e] -= x
                cnt[e] -= 1
                wsum[e] = wsum[e] - w if cnt[e] > 0 else 0.0

    # Whatever is still unfrozen crosses only unbounded resources.
    for s in range(n_sub):
        if not frozen[s]:
            rate[s] = np.inf
    return rate


@njit(cache=True)
def edge_load(n_edges, sub_indptr, sub_edges, rate):
    """Summed rate on each edge (float64[n_edges])."""
    load = np.zeros(n_edges)
    for s in range(rate.size):
        x = rate[s]
        for k in range(sub_indptr[s], sub_indptr[s + 1]):
            load[sub_edges[k]] += x
    return load
