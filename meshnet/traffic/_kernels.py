"""Numba kernels for ordering collective ranks along short paths (a small travelling salesman).

Private: arrays in, arrays out, no configuration. ``tests/naive_traffic.py`` has the plain
Python twins the tests compare against.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def nearest_neighbour_tour(cost, start):
    """Greedy tour from ``start``: always go to the cheapest unvisited node (ties: lowest id)."""
    n = cost.shape[0]
    order = np.empty(n, np.int32)
    seen = np.zeros(n, np.bool_)
    cur = start
    order[0] = cur
    seen[cur] = True
    for k in range(1, n):
        best = -1
        best_c = np.inf
        for j in range(n):
            if not seen[j] and (best < 0 or cost[cur, j] < best_c):
                best = j
                best_c = cost[cur, j]
        order[k] = best
        seen[best] = True
        cur = best
    return order


@njit(cache=True)
def two_opt(cost, order, max_passes, tol):
    """Best-improvement 2-opt on a closed tour, in place; returns the number of moves made.

    Each pass finds the move (reverse ``order[i+1..j]``) with the largest saving on the
    symmetric ``cost`` and applies it; it stops when no move saves more than ``tol``.
    """
    n = order.shape[0]
    moves = 0
    if n < 4:
        return moves
    for _ in range(max_passes):
        best_gain = tol
        bi = -1
        bj = -1
        for i in range(n - 2):
            a = order[i]
            b = order[i + 1]
            d_ab = cost[a, b]
            jmax = n if i > 0 else n - 1
            for j in range(i + 2, jmax):
                c = order[j]
                e = order[(j + 1) % n]
                gain = d_ab + cost[c, e] - cost[a, c] - cost[b, e]
                if gain > best_gain:
                    best_gain = gain
                    bi = i
                    bj = j
        if bi < 0:
            break
        lo = bi + 1
        hi = bj
        while lo < hi:
            tmp = order[lo]
            order[lo] = order[hi]
            order[hi] = tmp
            lo += 1
            hi -= 1
        moves += 1
    return moves
