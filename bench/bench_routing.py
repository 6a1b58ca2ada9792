"""Routing benchmarks, meshnet against its baselines side by side in one process.

1. Multi-source Dijkstra on Starlink Gen1 (4,408 satellites, +Grid ISLs, 100 ground stations
   as sources): meshnet (parallel and serial) against ``scipy.sparse.csgraph.dijkstra`` and
   networkx on the same snapshot; distances must agree.
   The graph must be connected (asserted: every station reaches every node).
2. Pair routing as the engine does it (``shortest_delay``: trees rooted at a vertex cover of
   the pairs, stopped at their targets) for the Gen1 bench pairs, beside scipy's Dijkstra
   from the same sources.
3. Hypatia-equivalent forwarding state for the Kuiper-630 directory (every node towards all
   100 stations) per 100 ms step; satgenpy's own time is quoted (8.5 s per step, README of
   the data folder; satgenpy is not installed here, so no ratio is formed) and, for one step,
   checked against a scipy/numpy re-implementation of satgenpy's algorithm
   (tests/naive_routing.py) for agreement. Propagation is timed separately.

Run ``python bench/bench_routing.py`` (about two minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

# GNU OpenMP threads spin after each parallel region by default; on a shared, loaded
# machine that steals the cores from everything else (serial code included). Must be set
# before numba starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

import numpy as np  # noqa: E402
from _timing import interleaved, ratio_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "hypatia_kuiper_630"
#: QUOTED, never measured here: satgenpy's time per step on this directory (data README).
HYPATIA_QUOTE = "satgenpy: 8.5 s per step (quoted from the data folder's README, not measured)"


def _times_interleaved(fns: dict, repeat: int) -> dict:
    """Run the candidates round-robin so a load change on the shared machine hits all alike."""
    return interleaved(fns, repeat)


def _times(fn, repeat):
    return _times_interleaved({"x": fn}, repeat)["x"]


def _fmt(ts):
    return f"median {statistics.median(ts) * 1e3:8.2f} ms  best {min(ts) * 1e3:8.2f} ms"


def gen1_snapshot():
    """Starlink Gen1 +Grid with 100 stations from meshnet's orbits and links, or a synthetic
    torus of the same size when those modules are unavailable."""
    try:
        from meshnet.links.model import link_tables
        from meshnet.scenario import load_scenario
        from meshnet.timegrid import TimeGrid
        from meshnet.world import build_world

        sc = load_scenario("starlink_gen1")
        world = build_world(sc)
        grid = TimeGrid.from_duration(sc.run.epoch, 1.0, 1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _, table = next(iter(link_tables(sc, grid, world=world)))
        snap = table.to_snapshot(world.node_names, world.node_kind)
        return snap, f"meshnet orbits + links (starlink_gen1, {sc.links.topology}, t = 0)"
    except Exception as exc:  # noqa: BLE001 - fall back, and say so
        sys.path.insert(0, str(ROOT / "tests"))
        from naive_routing import torus_snapshot

        rng = np.random.default_rng(0)
        snap = torus_snapshot(rng, planes=72, per_plane=61, n_ground=100, gsl_per_ground=8)
        return snap, f"synthetic torus 72 x 61 + 100 stations ({type(exc).__name__}: {exc})"


def bench_dijkstra(repeat: int, nx_sources: int):
    from scipy.sparse.csgraph import dijkstra

    from meshnet.routing import shortest_path_lengths

    snap, source = gen1_snapshot()
    n_sats = int(np.count_nonzero(snap.node_kind == 0))
    gs = np.flatnonzero(snap.node_kind == 1).astype(np.int32)
    print(f"graph: {source}")
    print(f"  {snap.n_nodes} nodes ({n_sats} satellites, {gs.size} stations), "
          f"{snap.n_edges // 2} links; sources = the {gs.size} stations; weight = delay_s")
    csr = snap.to_scipy("delay_s")

    ours = shortest_path_lengths(snap, gs, weight="delay_s")
    ref = dijkstra(csr, indices=gs)
    assert np.isfinite(ref).all(), "benchmark graph not connected: a station misses a node"
    print("  connected: every station reaches every node (asserted)")
    same = np.array_equal(np.isinf(ours), np.isinf(ref))
    fin = np.isfinite(ref)
    max_diff = float(np.max(np.abs(ours[fin] - ref[fin]))) if fin.any() else 0.0
    print(f"  distances identical to scipy: {bool(same and max_diff == 0.0)} "
          f"(max |diff| {max_diff:.3g} s, unreachable sets equal: {same})")
    assert same and max_diff <= 1e-12 * float(np.max(ref[fin]))

    t = _times_interleaved({
        "par": lambda: shortest_path_lengths(snap, gs, return_predecessors=True),
        "ser": lambda: shortest_path_lengths(snap, gs, return_predecessors=True,
                                             parallel=False),
        "sp": lambda: dijkstra(csr, indices=gs, return_predecessors=True),
        "sd": lambda: dijkstra(csr, indices=gs),
    }, repeat)
    t_par, t_ser, t_sp, t_sd = t["par"], t["ser"], t["sp"], t["sd"]
    print(f"  meshnet parallel ({os.cpu_count()} cores) {_fmt(t_par)}")
    print(f"  meshnet serial              {_fmt(t_ser)}")
    print(f"  scipy (with predecessors)   {_fmt(t_sp)}")
    print(f"  scipy (distances only)      {_fmt(t_sd)}")
    print(f"  side by side, scipy with predecessors / meshnet parallel: "
          f"{ratio_text(t_sp, t_par)}")
    print(f"  side by side, scipy with predecessors / meshnet serial:   "
          f"{ratio_text(t_sp, t_ser)}")
    print(f"  side by side, scipy distances only / meshnet parallel:    "
          f"{ratio_text(t_sd, t_par)}")

    import networkx as nx

    g = snap.to_networkx()
    k = min(nx_sources, gs.size)

    def run_nx():
        for s in gs[:k].tolist():
            nx.single_source_dijkstra_path_length(g, s, weight="delay_s")

    t = _times_interleaved({
        "nx": run_nx,
        "par": lambda: shortest_path_lengths(snap, gs[:k], return_predecessors=True)},
        max(2, repeat // 5))
    lengths = nx.single_source_dijkstra_path_length(g, int(gs[k - 1]), weight="delay_s")
    assert all(abs(lengths[v] - ours[k - 1, v]) <= 1e-12 for v in lengths)
    print(f"  networkx single_source_dijkstra x {k} sources {_fmt(t['nx'])}; side by side with "
          f"meshnet parallel on the same {k} sources: {ratio_text(t['nx'], t['par'])}")
    relay = snap.node_kind == 0
    t_relay = _times(lambda: shortest_path_lengths(snap, gs, relay_mask=relay,
                                                   return_predecessors=True), repeat)
    print(f"  meshnet with stations not relaying (scipy cannot express this) {_fmt(t_relay)}")


def bench_pairs(repeat: int):
    """The engine's routing call on the Gen1 bench pairs, beside scipy from the same sources."""
    from scipy.sparse.csgraph import dijkstra

    from meshnet.links.model import link_tables
    from meshnet.routing import policies as P
    from meshnet.runner import build_traffic, make_engine
    from meshnet.world import build_world

    sys.path.insert(0, str(ROOT / "bench"))
    from _step import bench_scenario

    sc = bench_scenario("starlink_gen1")
    world = build_world(sc)
    grid = sc.grid(duration_s=3.0, step_s=1.0)
    _, jobs, background = build_traffic(sc, world)
    engine = make_engine(sc, world, jobs, background)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _, table in link_tables(sc, grid, world=world):
            snap = table.to_snapshot(world.node_names, world.node_kind)
            rec = engine.step(snap, 1.0)
    src, dst = rec.pair_src, rec.pair_dst
    policy = engine.policy
    relay = policy._relay(snap)
    rev = P.K.reverse_edges(snap.indptr, snap.indices)
    sources = np.unique(src)
    csr = snap.to_scipy("delay_s")
    ref = dijkstra(csr, indices=sources)
    assert np.isfinite(ref).all(), "benchmark graph not connected"
    ours = policy.route(snap, src, dst)
    want = ref[np.searchsorted(sources, src), dst]
    got = ours.pair_delay_s()
    # Stations do not relay in meshnet (scipy's paths may pass through one): scipy bounds the
    # delays from below; the full trees (checked against scipy above) must agree exactly.
    assert np.all(got >= want * (1 - 1e-12)), "a pair delay below scipy's shortest distance"
    full = P._tree_routes(snap, src, dst, P._dijkstra_search(snap, snap.delay_s, relay, rev),
                          rev)
    assert np.allclose(got, full.pair_delay_s(), rtol=1e-12, atol=0)
    serial = type(policy)(policy.cfg, snap.n_nodes, policy.relay_mask)
    serial.parallel = False
    t = _times_interleaved({
        "scipy": lambda: dijkstra(csr, indices=sources),
        "pairs": lambda: policy.route(snap, src, dst),
        "pairs serial": lambda: serial.route(snap, src, dst),
        "full trees": lambda: P._tree_routes(
            snap, src, dst, P._dijkstra_search(snap, snap.delay_s, relay, rev), rev),
    }, repeat)
    print(f"\nPair routing, Starlink Gen1 bench pairs: {src.shape[0]} pairs, {sources.size} "
          f"distinct sources, {len(policy._cover(src, dst, snap.n_nodes)[0])} tree roots "
          "(vertex cover); connected (asserted); delays equal the full trees'")
    print(f"  scipy dijkstra(indices=sources)          {_fmt(t['scipy'])}")
    print(f"  meshnet shortest_delay, parallel         {_fmt(t['pairs'])}")
    print(f"  meshnet shortest_delay, serial           {_fmt(t['pairs serial'])}")
    print(f"  meshnet full trees (before: one per distinct destination) {_fmt(t['full trees'])}")
    print(f"  side by side, scipy / pairs parallel: {ratio_text(t['scipy'], t['pairs'])}")
    print(f"  side by side, scipy / pairs serial:   {ratio_text(t['scipy'], t['pairs serial'])}")
    print(f"  side by side, full trees / pairs:     {ratio_text(t['full trees'], t['pairs'])}")


def bench_hypatia(n_steps: int):
    if not (DATA / "tles.txt").exists():
        print(f"Kuiper-630 Hypatia directory not found at {DATA}; skipped")
        return
    from sgp4.conveniences import sat_epoch_datetime

    from meshnet.io.hypatia_export import HypatiaStateWriter
    from meshnet.orbits.hypatia import load_hypatia_dir
    from meshnet.orbits.propagate import propagate
    from meshnet.routing.hypatia import hypatia_forwarding_state, hypatia_topology
    from meshnet.timegrid import TimeGrid

    net = load_hypatia_dir(DATA)
    topo = hypatia_topology(net)
    grid = TimeGrid.from_duration(sat_epoch_datetime(net.constellation.satrecs[0]),
                                  n_steps * 0.1, 0.1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        orbits = propagate(net.constellation, grid)
    t_prop = time.perf_counter() - t0
    print(f"\nHypatia Kuiper-630 ({topo.n_sats} satellites, {topo.n_ground} stations), "
          f"{n_steps} steps of 100 ms")
    print(f"  propagation (sgp4 + ITRS, all steps): {t_prop / n_steps * 1e3:.2f} ms per step")
    hypatia_forwarding_state(topo, orbits.r_km[0])  # compile
    hypatia_forwarding_state(topo, orbits.r_km[0], parallel=False)
    for parallel in (True, False):
        ts = []
        for k in range(n_steps):
            t0 = time.perf_counter()
            hypatia_forwarding_state(topo, orbits.r_km[k], int(grid.t_ns[k]), parallel=parallel)
            ts.append(time.perf_counter() - t0)
        label = "parallel" if parallel else "serial  "
        print(f"  forwarding state, {label}: {_fmt(ts)} per step")
    print(f"  {HYPATIA_QUOTE}")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ts = []
        with HypatiaStateWriter(topo, tmp, 100_000_000, n_steps * 100_000_000) as w:
            for k in range(n_steps):
                st = hypatia_forwarding_state(topo, orbits.r_km[k], int(grid.t_ns[k]))
                t0 = time.perf_counter()
                w.add(st)
                ts.append(time.perf_counter() - t0)
        print(f"  writing fstate files: first step (full table) {ts[0] * 1e3:.1f} ms, later "
              f"steps median {statistics.median(ts[1:]) * 1e3:.2f} ms "
              f"({w.n_lines - (topo.n_nodes * topo.n_ground - topo.n_ground)} changed entries "
              f"over {n_steps - 1} steps)")
    # Agreement with a scipy re-implementation of satgenpy's algorithm on one step.
    sys.path.insert(0, str(ROOT / "tests"))
    from naive_routing import naive_hypatia_fstate

    t0 = time.perf_counter()
    ref, _ = naive_hypatia_fstate(topo.n_sats, net.isls, orbits.r_km[0], topo.ground_r_m,
                                  topo.max_gsl_length_m)
    t_ref = time.perf_counter() - t0
    st = hypatia_forwarding_state(topo, orbits.r_km[0])
    diff = 0
    for (u, d), val in ref.items():
        g = d - topo.n_sats
        if (st.next_hop[g, u], st.cur_if[g, u], st.next_if[g, u]) != val:
            diff += 1
    print(f"  satgenpy re-implementation (scipy + Python, one step): {t_ref:.2f} s; entries "
          f"differing from meshnet: {diff} of {len(ref)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and steps")
    args = ap.parse_args(argv)
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    bench_dijkstra(repeat=5 if args.quick else 20, nx_sources=5 if args.quick else 20)
    bench_pairs(repeat=5 if args.quick else 20)
    bench_hypatia(n_steps=20 if args.quick else 200)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
