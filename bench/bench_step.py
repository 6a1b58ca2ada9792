"""One whole emulation step on Starlink Gen1: propagation, links, routing, allocation, engine.

Scenario: ``starlink_gen1`` (4,408 satellites, +Grid plus one inter-shell head) with the 100
built-in ground stations, 64 compute satellites (an 8 x 8 block of shell 1) running a ring
all-reduce of a 7B-parameter bf16 model, and 400 background flows among the cities. Each
timed step is measured beside scipy's ``dijkstra(indices=<the same sources>)`` on the same
graph in the same process (see ``bench/_step.py``); targets: whole step at most 8 ms and at
most 0.6x that Dijkstra. Hypatia's figure is quoted, not measured (satgenpy is not installed).
Writing Parquet is not part of this step (``meshnet run`` timings cover it).

Run: ``python bench/bench_step.py [--quick] [--steps N]``
"""

from __future__ import annotations

import argparse
import statistics

from _step import HYPATIA_QUOTE, run_step_bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed steps")
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()
    n_steps = args.steps or (10 if args.quick else 40)
    out = run_step_bench("starlink_gen1", n_steps)
    whole = statistics.median(out["whole_s"])
    ratio = statistics.median(out["ratio"])
    print(f"  target whole step <= 8 ms: {'met' if whole <= 0.008 else 'MISSED'} (median); "
          f"<= 0.6x scipy: {'met' if ratio <= 0.6 else 'MISSED'} (median)")
    print(f"  {HYPATIA_QUOTE}")


if __name__ == "__main__":
    main()
