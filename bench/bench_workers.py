"""``meshnet links --workers 2`` (and ``--dask local``) against one process, side by side.

Each repetition runs the same command line once in one process and once with two workers
(and once on a two-worker Dask ``LocalCluster`` with ``--dask``), in alternating order, as
fresh ``python -m meshnet links`` processes (start-up, Numba cache loading and the final
concatenation included), and checks that the datasets are identical. Prints every time, the
min and median speed-up of the two-worker runs over the one-process runs, and the load
average around the measurement: on a shared machine the speed-up is only meaningful when
the two cores are idle (load average well below 1 before a run).

Run: ``python bench/bench_workers.py [--scenario starlink_gen1] [--duration 3600]
[--repeat 3] [--dask]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (the process and its workers, once they are reaped)."""
    cpu0 = _children_cpu_s()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return wall, _children_cpu_s() - cpu0


def compare(a: Path, b: Path) -> str:
    """'identical', or how many rows differ.

    State held from the whole history (the inter-shell heads of a multi-shell constellation,
    ground antennas under the elevation rule) is re-grown in each window, so there a few
    rows differ by design ("Splitting runs along the time axis" in docs/design.md).
    """
    import numpy as np
    import pyarrow.parquet as pq

    cols = ["t_s", "a", "b", "kind", "state"]
    ta, tb = pq.read_table(a / "links.parquet"), pq.read_table(b / "links.parquet")
    if ta.equals(tb):
        return "identical"
    if ta.num_rows != tb.num_rows:
        return f"{tb.num_rows:,} rows against {ta.num_rows:,} (history-held state differs)"
    same = np.ones(ta.num_rows, bool)
    for c in cols:
        x, y = ta.column(c), tb.column(c)
        if c in ("kind", "state"):
            x, y = x.combine_chunks().indices, y.combine_chunks().indices
        same &= np.asarray(x) == np.asarray(y)
    return (f"{(~same).sum():,} of {ta.num_rows:,} rows differ in link or state "
            f"({100 * (~same).mean():.3f} %; history-held state, see docs/design.md)")


def critical_share(args) -> float:
    """Steps of the longest window (warm-up included) over all steps the workers compute."""
    from meshnet.distributed import balanced_window_plan, warmup_steps
    from meshnet.links.model import _chunk_steps
    from meshnet.scenario import load_scenario
    from meshnet.world import build_world

    sc = load_scenario(args.scenario)
    n = int(round(args.duration / args.step))
    chunk = _chunk_steps(build_world(sc).n_sats)
    plan = balanced_window_plan(n, chunk, args.workers, warmup_steps(sc, args.step))
    cost = [b - w0 for w0, _, b in plan]
    return max(cost) / sum(cost)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="starlink_gen1")
    ap.add_argument("--duration", type=float, default=3600.0, help="simulated seconds")
    ap.add_argument("--step", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dask", action="store_true", help="also time --dask local")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    base = [sys.executable, "-m", "meshnet", "links", args.scenario, "--duration",
            str(args.duration), "--step", str(args.step), "-q"]
    variants = {"1 process": [], f"--workers {args.workers}": ["--workers", str(args.workers)]}
    if args.dask:
        variants["--dask local (2 workers)"] = ["--dask", "local"]
    # Warm the Numba cache and the OS file cache once, untimed.
    run(base + ["--out", str(tmp / "warm"), "--duration", str(min(args.duration, 60.0))])
    times: dict[str, list[float]] = {k: [] for k in variants}
    verdict: dict[str, str] = {}
    cpus: dict[str, list[float]] = {k: [] for k in variants}
    loads = []
    print(f"meshnet links {args.scenario}, {args.duration:g} s at {args.step:g} s steps; "
          f"{os.cpu_count()} cores")
    for rep in range(args.repeat):
        order = list(variants) if rep % 2 == 0 else list(reversed(variants))
        for name in order:
            load = os.getloadavg()[0]
            loads.append(load)
            out = tmp / name.split()[0].strip("-")
            wall, cpu = run(base + ["--out", str(out), *variants[name]])
            times[name].append(wall)
            cpus[name].append(cpu)
            print(f"  rep {rep + 1} {name:<30} {wall:7.2f} s wall, {cpu:7.2f} s CPU   "
                  f"(load before {load:.2f})")
        for name in variants:
            if name != "1 process":
                verdict[name] = compare(tmp / "1", tmp / name.split()[0].strip("-"))
    one = times["1 process"]
    for name, ts in times.items():
        if name == "1 process":
            continue
        ratios = [a / b for a, b in zip(one, ts, strict=True)]
        print(f"{name}: speed-up over one process min {min(ratios):.2f}x, median "
              f"{statistics.median(ratios):.2f}x (times: one {min(one):.2f}/"
              f"{statistics.median(one):.2f} s, this {min(ts):.2f}/{statistics.median(ts):.2f}"
              f" s min/median); dataset: {verdict[name]}")
        # Work added by splitting (warm-ups, start-up), and the longest window's share of it:
        # on idle cores the run lasts about as long as its longest window.
        cpu_one, cpu_two = (statistics.median(cpus[k]) for k in ("1 process", name))
        share = critical_share(args)
        print(f"  CPU time: one {cpu_one:.1f} s, this {cpu_two:.1f} s (median); the longest "
              f"window computes {100 * share:.0f} % of the steps computed, so on idle cores "
              f"the speed-up would be about {cpu_one / (share * cpu_two):.2f}x "
              f"(estimate from CPU times)")
    print(f"load average before runs: min {min(loads):.2f}, max {max(loads):.2f} "
          f"(1 min; {os.cpu_count()} cores)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
