"""Shared harness of the whole-step benchmarks (bench_step.py, bench_scale.py).

One emulation step is propagation (amortised over the run's propagation chunks, as
``meshnet run`` does), links, the CSR snapshot, routing and the rest of the engine (allocation
and fluid flows). Beside every timed step the same process runs the baseline on that step's
graph: ``scipy.sparse.csgraph.dijkstra(indices=<the distinct sources of the routed pairs>)``,
in alternating order so a load change on the shared machine hits both alike. Ratios are per
step, min and median printed.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

#: Satgenpy's per-step time for Starlink-550 alone (routes only), QUOTED from
#: ../shared/data/hypatia_kuiper_630/README.md. satgenpy is not importable here, so it is
#: printed as a quoted figure, never turned into a ratio.
HYPATIA_QUOTE = "satgenpy: about 15.3 s per 100 ms step for Starlink-550, routes only " \
                "(quoted from ../shared/data/hypatia_kuiper_630/README.md, not measured here)"


def bench_scenario(name: str):
    """The scenario ``name`` with the benchmark traffic: 64 compute satellites (an 8 x 8
    block of shell 1) in a ring all-reduce of a 7B bf16 model, 400 background pairs among the
    100 built-in stations."""
    from meshnet.config import parse_table
    from meshnet.scenario import load_scenario
    from meshnet.traffic.config import TrafficConfig

    # This checkout's scenario file (the scale scenarios live in topologies/), else built-in.
    path = Path(__file__).resolve().parents[1] / "topologies" / f"{name}.toml"
    sc = load_scenario(path if path.exists() else name)
    traffic = parse_table(TrafficConfig, {
        "compute": {"placement": "block", "shell": 0, "plane_count": 8, "slot_count": 8},
        "jobs": [{"name": "llm-7b", "kind": "allreduce", "algorithm": "ring",
                  "model_params": 7e9, "compute_s": 0.5}],
        "background": {"total_offered_bps": 400e9, "pairs": 400},
    }, "traffic", "bench")
    return sc.replace(traffic=traffic, ground=dataclasses.replace(sc.ground, stations="top100"))


def _stats(xs):
    return min(xs), statistics.median(xs)


def _fmt_ms(xs):
    lo, med = _stats(xs)
    return f"min {1e3 * lo:8.2f} ms  median {1e3 * med:8.2f} ms"


def run_step_bench(name: str, n_steps: int, warm: int = 5, prop_repeat: int = 3,
                   baseline: bool = True) -> dict:
    """Time ``n_steps`` whole steps of scenario ``name`` (after ``warm`` untimed ones) and
    print per-stage min/median, the whole step, and ratios against scipy's Dijkstra."""
    from scipy.sparse.csgraph import dijkstra

    from meshnet.links import LinkModel
    from meshnet.orbits.propagate import propagate, sun_direction_ecef
    from meshnet.runner import CHUNK_STEPS, build_traffic, make_engine
    from meshnet.world import build_world

    sc = bench_scenario(name)
    t0 = time.perf_counter()
    world = build_world(sc)
    t_world = time.perf_counter() - t0
    grid = sc.grid(duration_s=warm + n_steps, step_s=1.0)

    # Propagation as `meshnet run` does it: one call per chunk of CHUNK_STEPS steps. The
    # first call loads (or compiles) the kernels; the timed calls repeat it.
    chunk = sc.grid(duration_s=CHUNK_STEPS, step_s=1.0)
    propagate(world.constellation, chunk)
    sun_direction_ecef(chunk)
    t_prop = []
    for _ in range(prop_repeat):
        t0 = time.perf_counter()
        propagate(world.constellation, chunk)
        sun_direction_ecef(chunk)
        t_prop.append((time.perf_counter() - t0) / len(chunk))
    orbits = propagate(world.constellation, grid)
    sun = sun_direction_ecef(grid)

    _, jobs, background = build_traffic(sc, world)
    engine = make_engine(sc, world, jobs, background)
    policy = engine.policy
    route_s = []
    inner = policy.route

    def timed_route(*a, **k):
        t = time.perf_counter()
        out = inner(*a, **k)
        route_s.append(time.perf_counter() - t)
        return out

    policy.route = timed_route
    model = LinkModel(sc.links, sc.ground, world.constellation, world.ground, 1.0)
    names, kinds = world.node_names, world.node_kind
    st = {k: [] for k in ("links", "snapshot", "routing", "engine without routing",
                          "scipy dijkstra")}
    whole, ratio, ratio_route, reach, cpu = [], [], [], [], []
    prop_step = statistics.median(t_prop)
    for k in range(len(grid)):
        def ours(k=k):
            a = time.perf_counter()
            table = model.step(int(grid.t_ns[k]), orbits.r_km[k], orbits.v_km_s[k], sun[k])
            b = time.perf_counter()
            snap = table.to_snapshot(names, kinds)
            c = time.perf_counter()
            n_route = len(route_s)
            rec = engine.step(snap, 1.0)
            d = time.perf_counter()
            r = sum(route_s[n_route:])
            return snap, rec, (b - a, c - b, r, d - c - r)

        def base(snap, rec):
            sources = np.unique(rec.pair_src)
            csr = snap.to_scipy("delay_s")
            t = time.perf_counter()
            dijkstra(csr, indices=sources)
            return time.perf_counter() - t

        c0 = time.process_time()
        snap, rec, parts = ours()
        cpu.append(time.process_time() - c0)
        if k < warm:
            cpu.pop()
            continue
        t_base = base(snap, rec) if baseline else np.nan
        for key, v in zip(("links", "snapshot", "routing", "engine without routing"), parts,
                          strict=True):
            st[key].append(v)
        st["scipy dijkstra"].append(t_base)
        w = prop_step + sum(parts)
        whole.append(w)
        ratio.append(w / t_base)
        ratio_route.append(parts[2] / t_base)
        reach.append(float(np.mean(rec.routes.pair_reachable)))
        # Alternate the order: next step the baseline goes first on this snapshot's twin.
        if baseline and k % 2:
            base(snap, rec)
    print(f"{name}: {world.n_sats:,} satellites, {world.n_ground} stations, "
          f"{len(jobs[0].nodes)} compute satellites, {len(background[0])} background flows; "
          f"world built in {t_world:.1f} s")
    print(f"  routed pairs per step: {rec.pair_src.shape[0]} from "
          f"{np.unique(rec.pair_src).shape[0]} distinct sources; reachable "
          f"{100 * min(reach):.1f} % (min over steps)")
    print(f"  timed steps: {n_steps} after {warm} warm-up; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    label = f"propagation (per step, chunks of {CHUNK_STEPS})"
    print(f"  {label:<40} {_fmt_ms(t_prop)}")
    for key, v in st.items():
        print(f"  {key:<40} {_fmt_ms(v)}")
    print(f"  {'whole step':<40} {_fmt_ms(whole)}")
    # On a loaded machine wall time includes waiting for a core; CPU time (all threads, plus
    # the propagation share) is what the step costs when it has the cores to itself, at most
    # (threads' CPU adds up).
    cpu_step = [c + prop_step for c in cpu]
    print(f"  {'whole step, CPU time of all threads':<40} {_fmt_ms(cpu_step)}")
    if baseline:
        lo, med = _stats(ratio)
        print(f"  whole step / scipy dijkstra (same sources, same graph): min {lo:.3f}x  "
              f"median {med:.3f}x")
        lo, med = _stats(ratio_route)
        print(f"  routing / scipy dijkstra:                             min {lo:.3f}x  "
              f"median {med:.3f}x")
    return {"cpu_s": cpu_step, "whole_s": whole, "ratio": ratio, "ratio_route": ratio_route,
            "stages": st, "prop_s": t_prop}
