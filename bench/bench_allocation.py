"""Benchmark: weighted max-min fair allocation on a starlink_gen1-sized mesh.

Baseline: plain numpy progressive filling (``tests/naive_allocation.py::maxmin_numpy``, one
vectorised round per bottleneck level). meshnet: :func:`meshnet.allocation.
max_min_fair_multipath` (validation + event-driven Numba kernel). Both run in this process on
the same flows; their path rates must agree to 1e-6 relative.

Mesh: the five Starlink gen-1 shells (72x22 @ 550 km 53 deg, 72x22 @ 540 km 53.2 deg,
36x20 @ 570 km 70 deg, 6x58 @ 560 km 97.6 deg, 4x43 @ 560 km 97.6 deg; 4,408 satellites)
propagated with meshnet.orbits (Walker shells, SGP4) to one instant. meshnet.links has no
topology builder yet, so the +Grid is built here: each satellite links to its two neighbours in
its plane and the same slot in the two adjacent planes; every satellite of shells 1-4 also links
to its nearest satellite of a lower shell, so the mesh is connected. 100 Gbps per directed edge.

Flows: 10,000 between random pairs of a pool of 1,024 endpoint satellites, weights 1, 2 or 4,
a fifth with a finite demand (1-20 Gbps). Each flow uses 1-4 paths: the shortest-delay path and
shortest paths under randomly perturbed delays (distinct ones kept, equal weight fractions).
Path construction is set-up and is not timed.

Run: ``python bench/bench_allocation.py [--quick] [--flows N] [--repeats R] [--proportional]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import naive_allocation  # noqa: E402
from _timing import interleaved, ratio_text  # noqa: E402

from meshnet.allocation import edge_load_bps, max_min_fair_multipath  # noqa: E402
from meshnet.kernels import _allocation as kernels  # noqa: E402
from meshnet.orbits.config import ShellConfig  # noqa: E402
from meshnet.orbits.propagate import propagate  # noqa: E402
from meshnet.orbits.walker import walker_constellation  # noqa: E402
from meshnet.timegrid import TimeGrid  # noqa: E402
from meshnet.units import C_KM_S  # noqa: E402

SHELLS = [  # starlink_gen1 (FCC filing as used by Hypatia)
    dict(altitude_km=550, inclination_deg=53.0, planes=72, sats_per_plane=22),
    dict(altitude_km=540, inclination_deg=53.2, planes=72, sats_per_plane=22),
    dict(altitude_km=570, inclination_deg=70.0, planes=36, sats_per_plane=20),
    dict(altitude_km=560, inclination_deg=97.6, planes=6, sats_per_plane=58),
    dict(altitude_km=560, inclination_deg=97.6, planes=4, sats_per_plane=43),
]
CAPACITY_BPS = 100e9
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def build_mesh():
    """Undirected links (a, b) and positions of the starlink_gen1 +Grid mesh at EPOCH."""
    shells = [ShellConfig(**s) for s in SHELLS]
    cons = walker_constellation(shells, EPOCH)
    r_km = propagate(cons, TimeGrid.from_duration(EPOCH, 1.0, 1.0)).r_km[0]
    a, b, first, starts = [], [], 0, []
    for s in shells:
        p_n, s_n = s.planes, s.sats_per_plane
        ids = first + np.arange(p_n * s_n).reshape(p_n, s_n)
        a += [ids.ravel(), ids.ravel()]
        b += [np.roll(ids, -1, axis=1).ravel(), np.roll(ids, -1, axis=0).ravel()]
        starts.append(first)
        first += p_n * s_n
    starts.append(first)
    for k in range(1, len(shells)):
        lo, hi = starts[k], starts[k + 1]
        d = np.linalg.norm(r_km[lo:hi, None, :] - r_km[None, :lo, :], axis=2)
        a.append(np.arange(lo, hi))
        b.append(d.argmin(axis=1))
    a, b = np.concatenate(a), np.concatenate(b)
    pairs = np.unique(np.sort(np.stack([a, b], 1), axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return r_km, pairs[:, 0], pairs[:, 1]


def directed_edges(n, a, b, r_km):
    """CSR-sorted directed edges (src, dst) with delays, and a (u, v) -> edge id lookup key."""
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    delay_s = np.linalg.norm(r_km[src] - r_km[dst], axis=1) / C_KM_S
    return src, dst, delay_s, src.astype(np.int64) * n + dst


def make_flows(n, src, dst, delay_s, keys, n_flows, n_pool, rng):
    pool = rng.choice(n, n_pool, replace=False)
    fs = rng.integers(0, n_pool, n_flows)
    fd = (fs + rng.integers(1, n_pool, n_flows)) % n_pool  # never the same endpoint
    k_paths = rng.integers(1, 5, n_flows)
    preds = []
    for j in range(4):  # path variants: exact delays, then 3 random perturbations
        w = delay_s * (1.0 if j == 0 else rng.uniform(1.0, 1.5, delay_s.size))
        g = scipy.sparse.csr_matrix((w, (src, dst)), shape=(n, n))
        _, pred = scipy.sparse.csgraph.dijkstra(g, indices=pool, return_predecessors=True)
        preds.append(pred)
    flow_paths, path_edges = [], []
    for f in range(n_flows):
        seen = []
        for j in range(4):
            if len(seen) == k_paths[f]:
                break
            pred = preds[j][fs[f]]
            node, nodes = pool[fd[f]], [pool[fd[f]]]
            while node != pool[fs[f]]:
                node = pred[node]
                nodes.append(node)
            nodes = np.array(nodes[::-1], np.int64)
            e = np.searchsorted(keys, nodes[:-1] * n + nodes[1:]).astype(np.int32)
            if not any(np.array_equal(e, s) for s in seen):
                seen.append(e)
        flow_paths.append(len(seen))
        path_edges += seen
    fptr = np.concatenate([[0], np.cumsum(flow_paths)]).astype(np.int64)
    pptr = np.concatenate([[0], np.cumsum([p.size for p in path_edges])]).astype(np.int64)
    pedges = np.concatenate(path_edges).astype(np.int32)
    frac = np.repeat(1.0 / np.asarray(flow_paths), flow_paths)
    weight = rng.choice([1.0, 2.0, 4.0], n_flows)
    demand = np.where(rng.random(n_flows) < 0.2, rng.uniform(1e9, 20e9, n_flows), np.inf)
    return fptr, pptr, pedges, frac, weight, demand


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, np.array(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 flows, fewer repeats")
    ap.add_argument("--flows", type=int, default=None, help="number of flows (default 10,000)")
    ap.add_argument("--repeats", type=int, default=None, help="timed meshnet runs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--proportional", action="store_true",
                    help="also time proportional fairness once (interior point, seconds)")
    args = ap.parse_args(argv)
    n_flows = args.flows or (2000 if args.quick else 10000)
    repeats = args.repeats or (5 if args.quick else 20)
    n_pool = 256 if args.quick else 1024
    base_rounds = 2 if args.quick else 3
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    r_km, a, b = build_mesh()
    n = r_km.shape[0]
    src, dst, delay_s, keys = directed_edges(n, a, b, r_km)
    capacity = np.full(src.size, CAPACITY_BPS)
    fptr, pptr, pedges, frac, weight, demand = make_flows(n, src, dst, delay_s, keys, n_flows,
                                                          min(n_pool, n), rng)
    print(f"mesh: starlink_gen1 +Grid (synthetic, meshnet.orbits positions), {n} satellites, "
          f"{a.size} links, {src.size} directed edges at {CAPACITY_BPS / 1e9:.0f} Gbps")
    print(f"flows: {n_flows}, subflows (paths): {pptr.size - 1}, edge crossings: {pedges.size}, "
          f"mean hops {pedges.size / (pptr.size - 1):.1f}; set-up {time.perf_counter() - t0:.1f} s")

    args_mp = (capacity, fptr, pptr, pedges, frac, weight, demand)
    t0 = time.perf_counter()
    max_min_fair_multipath(*args_mp)
    print(f"meshnet first call (compile or cache load): {time.perf_counter() - t0:.2f} s")
    got, t_mesh = timed(lambda: max_min_fair_multipath(*args_mp), repeats)

    # kernel alone (inputs already lowered), for reference
    from meshnet.allocation._problem import build_problem

    prob = build_problem(*args_mp)
    _, t_kernel = timed(lambda: kernels.maxmin_progressive_filling(
        prob.capacity_bps, prob.sub_indptr, prob.sub_edges, prob.sub_weight, prob.group,
        prob.group_cap_bps), repeats)

    # Baseline and meshnet side by side, interleaved round by round.
    ref = naive_allocation.maxmin_numpy(*args_mp)
    side = interleaved({"base": lambda: naive_allocation.maxmin_numpy(*args_mp),
                        "mesh": lambda: max_min_fair_multipath(*args_mp)},
                       base_rounds, warm=False)
    t_base = np.array(side["base"])
    rel = np.abs(got.path_rate_bps - ref) / np.maximum(np.abs(ref), 1.0)
    load = edge_load_bps(capacity.size, pptr, pedges, got.path_rate_bps)
    agree = bool(rel.max() <= 1e-6)
    print(f"agreement: max relative difference {rel.max():.2e} (limit 1e-6): "
          f"{'OK' if agree else 'FAIL'}; max edge load / capacity {np.max(load / capacity):.12f}")
    print(f"saturated edges: {(load >= capacity * (1 - 1e-9)).sum()}, flow rate median "
          f"{np.median(got.flow_rate_bps) / 1e9:.3f} Gbps")
    ms_mesh = np.median(t_mesh) * 1e3
    ms_base = np.median(t_base) * 1e3
    print(f"numpy progressive filling (baseline): {ms_base:10.1f} ms per allocation (median of "
          f"{base_rounds}; min {t_base.min() * 1e3:.1f} ms)")
    print(f"meshnet max_min_fair_multipath:       {ms_mesh:10.2f} ms per allocation "
          f"(median of {repeats}; min {t_mesh.min() * 1e3:.2f} ms; kernel alone "
          f"{np.median(t_kernel) * 1e3:.2f} ms)")
    print(f"speed-up, side by side: {ratio_text(side['base'], side['mesh'])} "
          f"(target >= 50x, < 20 ms per allocation)")
    if args.proportional:
        from meshnet.allocation import proportional_fair_multipath

        t0 = time.perf_counter()
        prop = proportional_fair_multipath(*args_mp)
        t_prop = time.perf_counter() - t0
        load = edge_load_bps(capacity.size, pptr, pedges, prop.path_rate_bps)
        print(f"proportional_fair_multipath: {t_prop:.2f} s; max edge load / capacity "
              f"{np.max(load / capacity):.12f}; total throughput "
              f"{prop.flow_rate_bps.sum() / 1e12:.2f} Tbps "
              f"(max-min {got.flow_rate_bps.sum() / 1e12:.2f} Tbps)")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
