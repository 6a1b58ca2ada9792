"""Whole steps at next-generation scale: 41,616 satellites in one shell, and in 16 shells.

Scenarios ``walker_41616`` (one 204 x 204 Walker shell, +Grid) and ``walker_16x2601``
(sixteen 51 x 51 shells with one inter-shell head each), both with the 100 built-in stations,
a 64-satellite ring all-reduce job and 400 background flows, timed as ``bench/bench_step.py``
(per-stage min/median, beside scipy's Dijkstra on the same sources and graph). Targets: under
100 ms per step for the single shell, under 60 ms for the 16 shells.

Run: ``python bench/bench_scale.py [--quick] [--only walker_41616|walker_16x2601]``
"""

from __future__ import annotations

import argparse
import statistics

from _step import run_step_bench

TARGETS_S = {"walker_41616": 0.100, "walker_16x2601": 0.060}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed steps")
    ap.add_argument("--only", choices=sorted(TARGETS_S))
    args = ap.parse_args()
    n_steps = 5 if args.quick else 15
    for name, target in TARGETS_S.items():
        if args.only and name != args.only:
            continue
        out = run_step_bench(name, n_steps, warm=3, prop_repeat=2)
        whole = statistics.median(out["whole_s"])
        print(f"  target < {1e3 * target:.0f} ms per step: "
              f"{'met' if whole < target else 'MISSED'} (median {1e3 * whole:.1f} ms)\n")


if __name__ == "__main__":
    main()
