"""Slow, obvious references for meshnet.traffic: plain-Python tour building and brute force."""

from __future__ import annotations

import itertools
import math


def nearest_neighbour_tour(cost, start):
    n = len(cost)
    order = [start]
    seen = {start}
    while len(order) < n:
        cur = order[-1]
        best = min((j for j in range(n) if j not in seen), key=lambda j: (cost[cur][j], j))
        order.append(best)
        seen.add(best)
    return order


def two_opt(cost, order, max_sweeps, tol):
    """Sweeping 2-opt, the same move order and tie-breaking as the kernel."""
    order = list(order)
    n = len(order)
    if n < 4:
        return order
    for _ in range(max_sweeps):
        improved = False
        for i in range(n - 2):
            best, best_j = tol, None
            for j in range(i + 2, n if i > 0 else n - 1):
                a, b, c, e = order[i], order[i + 1], order[j], order[(j + 1) % n]
                gain = cost[a][b] + cost[c][e] - cost[a][c] - cost[b][e]
                if gain > best:
                    best, best_j = gain, j
            if best_j is not None:
                order[i + 1:best_j + 1] = reversed(order[i + 1:best_j + 1])
                improved = True
        if not improved:
            break
    return order


def tour_length(cost, order):
    return sum(cost[order[k]][order[(k + 1) % len(order)]] for k in range(len(order)))


def optimal_tour_length(cost):
    """Brute force over all rings through rank 0 (n <= 9)."""
    n = len(cost)
    best = math.inf
    for perm in itertools.permutations(range(1, n)):
        best = min(best, tour_length(cost, (0, *perm)))
    return best


def bytes_sent_per_node(phases):
    """Total bytes each node id sends over a list of phases."""
    out = {}
    for ph in phases:
        for s, b in zip(ph.src.tolist(), ph.bytes.tolist(), strict=True):
            out[s] = out.get(s, 0.0) + b
    return out


def bytes_received_per_node(phases):
    out = {}
    for ph in phases:
        for d, b in zip(ph.dst.tolist(), ph.bytes.tolist(), strict=True):
            out[d] = out.get(d, 0.0) + b
    return out
