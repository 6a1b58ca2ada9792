"""The default ``meshnet run`` (starlink_550_training, 600 steps of 1 s) with warm caches.

Prints, for one warm-up run and then ``--repeat`` timed runs in this process: the whole run
(``run_scenario`` without plots: stepping plus writing the Parquet datasets and summary), and
the stepping alone (propagation in chunks, links, snapshot, routing, allocation and flows: the
same calls as the runner, no outputs). Wall time and CPU time of all threads are both given:
on a shared machine wall time includes waiting for a core. Target: stepping under 6 s. There
is no baseline to compare with (nothing else runs this pipeline), so no ratio is printed.

Run: ``python bench/bench_run.py [--repeat 2]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("MPLBACKEND", "Agg")


def stepping(sc, grid):
    from meshnet.links.model import link_model
    from meshnet.runner import build_traffic, make_engine, snapshot_stream
    from meshnet.world import build_world

    world = build_world(sc)
    compute, jobs, background = build_traffic(sc, world)
    engine = make_engine(sc, world, jobs, background, compute)
    model = link_model(sc, grid, world)
    for _, _, _, _, snap in snapshot_stream(sc, world, grid, model):
        engine.step(snap, sc.run.step_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from meshnet.cli import DEFAULT_SCENARIO
    from meshnet.runner import run_scenario
    from meshnet.scenario import load_scenario

    sc = load_scenario(DEFAULT_SCENARIO)
    grid = sc.grid()
    out = {"run": ([], []), "stepping": ([], [])}
    with tempfile.TemporaryDirectory() as tmp:
        def whole():
            run_scenario(sc, grid, os.path.join(tmp, "run"), plots=False, progress=False)

        for rnd in range(args.repeat + 1):  # round 0 warms the caches
            for name, fn in (("run", whole), ("stepping", lambda: stepping(sc, grid))):
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                if rnd:
                    out[name][0].append(time.perf_counter() - w0)
                    out[name][1].append(time.process_time() - c0)
    print(f"{DEFAULT_SCENARIO}: {len(grid)} steps, warm caches, {args.repeat} timed rounds; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name, label in (("run", "meshnet run (no plots, writes datasets)"),
                        ("stepping", "stepping only (no outputs)")):
        wall, cpu = out[name]
        print(f"  {label:<42} wall min {min(wall):6.2f} s  median {statistics.median(wall):6.2f}"
              f" s;  CPU min {min(cpu):6.2f} s  median {statistics.median(cpu):6.2f} s")
    print(f"  target: stepping under 6 s: {'met' if min(out['stepping'][0]) < 6 else 'MISSED'}"
          f" (wall, min); CPU min {min(out['stepping'][1]):.2f} s")


if __name__ == "__main__":
    main()
