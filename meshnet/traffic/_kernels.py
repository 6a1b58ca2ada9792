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
def two_opt(cost, order, max_sweeps, tol):
    """2-opt on a closed tour, in place; returns the number of moves made.

    Each sweep visits the tour edges ``(order[i], order[i+1])`` in turn and applies, for each,
    the move (reverse ``order[i+1..j]``) that saves most on the symmetric ``cost``, if it saves
    more than ``tol``. Sweeps repeat until one makes no move (or ``max_sweeps``).
    """
    n = order.shape[0]
    moves = 0
    if n < 4:
        return moves
    for _ in range(max_sweeps):
        improved = False
        for i in range(n - 2):
            a = order[i]
            b = order[i + 1]
            d_ab = cost[a, b]
            best_gain = tol
            bj = -1
            jmax = n if i > 0 else n - 1
            for j in range(i + 2, jmax):
                c = order[j]
                e = order[(j + 1) % n]
                gain = d_ab + cost[c, e] - cost[a, c] - cost[b, e]
                if gain > best_gain:
                    best_gain = gain
                    bj = j
            if bj >= 0:
                lo = i + 1
                hi = bj
                while lo < hi:
                    tmp = order[lo]
                    order[lo] = order[hi]
                    order[hi] = tmp
                    lo += 1
                    hi -= 1
                moves += 1
                improved = True
        if not improved:
            break
    return moves
