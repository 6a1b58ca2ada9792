"""One whole emulation step on Starlink Gen1: links, routing, allocation and the fluid engine.

Scenario: ``starlink_gen1`` (4,408 satellites, +Grid, all feasibility checks) with the 100
built-in ground stations, 64 compute satellites (an 8 x 8 block of shell 1) running a ring
all-reduce of a 7B-parameter bf16 model, and background traffic among the cities. Prints the
time per stage and per step against the 50 ms target, and beside Hypatia's reported per-step
time (satgenpy needs about 15.3 s per 100 ms step for Starlink-550 alone on this machine class;
quoted from ``../shared/data/hypatia_kuiper_630/README.md``, not re-measured here: Hypatia
only computes routes, not allocation or traffic).

Run: ``python bench/bench_step.py [--quick]``
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

HYPATIA_STARLINK_S_PER_STEP = 15.3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed steps")
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()
    n_steps = args.steps or (10 if args.quick else 30)

    from meshnet.config import parse_table
    from meshnet.links import LinkModel
    from meshnet.orbits.propagate import propagate, sun_direction_ecef
    from meshnet.runner import build_traffic, make_engine
    from meshnet.scenario import load_scenario
    from meshnet.traffic.config import TrafficConfig
    from meshnet.world import build_world

    sc = load_scenario("starlink_gen1")
    traffic = parse_table(TrafficConfig, {
        # +Grid keeps the five shells apart (stations do not relay): the 64 compute
        # satellites are an 8 x 8 block of shell 1, so the ring's bytes really flow.
        "compute": {"placement": "block", "shell": 0, "plane_count": 8, "slot_count": 8},
        "jobs": [{"name": "llm-7b", "kind": "allreduce", "algorithm": "ring",
                  "model_params": 7e9, "compute_s": 0.5}],
        "background": {"total_offered_bps": 400e9, "pairs": 400},
    }, "traffic", "bench_step")
    sc = sc.replace(traffic=traffic,
                    ground=dataclasses.replace(sc.ground, stations="top100"))
    world = build_world(sc)
    warm = 5
    grid = sc.grid(duration_s=warm + n_steps, step_s=1.0)
    propagate(world.constellation, grid[:2])  # compile (or load) the kernels first
    sun_direction_ecef(grid[:2])
    t0 = time.perf_counter()
    orbits = propagate(world.constellation, grid)
    sun = sun_direction_ecef(grid)
    t_prop = (time.perf_counter() - t0) / len(grid)

    _, jobs, background = build_traffic(sc, world)
    engine = make_engine(sc, world, jobs, background)
    model = LinkModel(sc.links, sc.ground, world.constellation, world.ground, 1.0)
    names, kinds = world.node_names, world.node_kind
    times = {"links": [], "snapshot": [], "engine (routing + allocation + flows)": []}
    events = []
    for k in range(len(grid)):
        a = time.perf_counter()
        table = model.step(int(grid.t_ns[k]), orbits.r_km[k], orbits.v_km_s[k], sun[k])
        b = time.perf_counter()
        snap = table.to_snapshot(names, kinds)
        c = time.perf_counter()
        rec = engine.step(snap, 1.0)
        d = time.perf_counter()
        if k >= warm:  # the first steps compile kernels and plan the ring
            times["links"].append(b - a)
            times["snapshot"].append(c - b)
            times["engine (routing + allocation + flows)"].append(d - c)
            events.append(rec.n_events)
    total = sum(np.mean(v) for v in times.values())
    print(f"starlink_gen1: {world.n_sats} satellites, {world.n_ground} ground stations, "
          f"{len(jobs[0].nodes)} compute satellites, {len(background[0])} background flows")
    print(f"timed steps: {n_steps} (after {warm} warm-up steps); "
          f"mean allocation events per step: {np.mean(events):.1f}; "
          f"training steps finished: {len(engine.job_records())}")
    print(f"  propagation (per step, amortised over one SGP4 call): {1e3 * t_prop:8.2f} ms")
    for name, v in times.items():
        print(f"  {name:<42} {1e3 * np.mean(v):8.2f} ms  (max {1e3 * np.max(v):.2f})")
    total += t_prop
    print(f"  {'whole step':<42} {1e3 * total:8.2f} ms   target < 50 ms: "
          f"{'met' if total < 0.05 else 'MISSED'}")
    print(f"ratio against Hypatia's reported {HYPATIA_STARLINK_S_PER_STEP} s per step "
          f"(routes only, Starlink-550): {HYPATIA_STARLINK_S_PER_STEP / total:,.0f}x")


if __name__ == "__main__":
    main()
