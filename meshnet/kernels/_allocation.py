"""Numba kernels for bandwidth allocation (private; see :mod:`meshnet.allocation`).

Resources are the directed edges ``0 .. E-1`` followed by one *group* resource per flow
``E .. E+G-1``: a group bounds the summed rate of its subflows (a flow's demand, shared by the
paths it is split over). Every subflow crosses the edges of its path and at most one group.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# A 4-ary min-heap of (key, value): half the depth of a binary heap and the four children share
# a cache line, which makes pops about twice as fast here.

@njit(cache=True, inline="always")
def _sift_down(hkey, hval, pos, size):
    key = hkey[pos]
    val = hval[pos]
    while True:
        first = 4 * pos + 1
        if first >= size:
            break
        best = first
        best_key = hkey[first]
        for c in range(first + 1, min(first + 4, size)):
            if hkey[c] < best_key:
                best_key = hkey[c]
                best = c
        if best_key >= key:
            break
        hkey[pos] = best_key
        hval[pos] = hval[best]
        pos = best
    hkey[pos] = key
    hval[pos] = val


@njit(cache=True, inline="always")
def _sift_up(hkey, hval, pos):
    key = hkey[pos]
    val = hval[pos]
    while pos > 0:
        parent = (pos - 1) >> 2
        if hkey[parent] <= key:
            break
        hkey[pos] = hkey[parent]
        hval[pos] = hval[parent]
        pos = parent
    hkey[pos] = key
    hval[pos] = val


REM = 0
WSUM = 1
CNT = 2


@njit(cache=True, inline="always")
def _take(st, e, x, w):
    """Freeze one subflow of rate ``x`` and weight ``w`` on resource ``e``."""
    st[4 * e + REM] -= x
    c = st[4 * e + CNT] - 1.0
    st[4 * e + CNT] = c
    # exact zero once empty, so no rounding residue is left in the weight sum
    st[4 * e + WSUM] = st[4 * e + WSUM] - w if c > 0.0 else 0.0


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

    # The filling loop keeps each resource's state in one row (remaining capacity, summed
    # weight of unfrozen subflows, their count as a float, exact below 2**53) so that freezing
    # a subflow touches one cache line per resource it crosses.
    st = np.empty(4 * n_res)
    for r in range(n_res):
        st[4 * r + REM] = rem[r]
        st[4 * r + WSUM] = wsum[r]
        st[4 * r + CNT] = cnt[r]

    # Heap of (saturation level, resource); stale keys are refreshed lazily.
    hkey = np.empty(n_res + 1)
    hval = np.empty(n_res + 1, np.int32)
    size = 0
    for r in range(n_res):
        if st[4 * r + CNT] > 0.0 and st[4 * r + REM] < np.inf:
            hkey[size] = max(st[4 * r + REM], 0.0) / st[4 * r + WSUM]
            hval[size] = r
            size += 1
    for pos in range((size - 2) // 4, -1, -1):
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
        if st[4 * r + CNT] == 0.0:
            continue
        cur = max(st[4 * r + REM], 0.0) / st[4 * r + WSUM]
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
                _take(st, sub_edges[k], x, w)
            g = group[s]
            if g >= 0:
                _take(st, n_edges + g, x, w)

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



@njit(cache=True)
def compact_edges(n_edges, sub_edges):
    """Renumber the edges that ``sub_edges`` uses as ``0..m-1``, in increasing id order.

    Returns ``(used, new_sub_edges)``: ``used[j]`` is the original id of compact edge ``j``.
    The order is kept, so a kernel that visits resources by id visits them in the same order.
    """
    new_id = np.zeros(n_edges, np.int32)
    for k in range(sub_edges.shape[0]):
        new_id[sub_edges[k]] = 1
    m = 0
    for e in range(n_edges):
        if new_id[e]:
            new_id[e] = m
            m += 1
        else:
            new_id[e] = -1
    used = np.empty(m, np.int64)
    for e in range(n_edges):
        if new_id[e] >= 0:
            used[new_id[e]] = e
    out = np.empty(sub_edges.shape[0], np.int32)
    for k in range(sub_edges.shape[0]):
        out[k] = new_id[sub_edges[k]]
    return used, out
