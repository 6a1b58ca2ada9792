"""Resident memory over a long run: growth per step (with its noise) and peak.

Runs ``meshnet run`` on the default scenario (``starlink_550_training``) and/or
``meshnet links`` on a large constellation (``starlink_gen1``) for a simulated day (or
``--duration`` seconds), sampling the resident set size (``/proc/self/statm``) every
``--every`` steps. The growth per step is the slope of a least-squares line through the
samples after the first ``--skip`` fraction (allocator pools, Numba and Parquet buffers fill
up early), printed with its standard error and the residual spread; growth is "zero within
noise" when the slope is within two standard errors of zero, otherwise it is extrapolated to
a simulated day.

Run: ``python bench/bench_memory.py [--which run|links|both] [--duration S] [--every N]``
(``--duration 86400`` is one simulated day: about 86,400 steps at 1 s.)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PAGE = os.sysconf("SC_PAGE_SIZE")
SECONDS_PER_DAY = 86_400.0


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Sampler:
    """Record ``(step, rss)`` every ``every`` steps of a wrapped step iterator."""

    def __init__(self, every: int):
        self.every = max(1, int(every))
        self.steps: list[int] = []
        self.rss: list[int] = []
        self.n = 0

    def wrap(self, iterable):
        for item in iterable:
            yield item
            self.n += 1
            if self.n % self.every == 0:
                self.steps.append(self.n)
                self.rss.append(rss_bytes())

    def fit(self, skip: float) -> dict:
        s = np.asarray(self.steps, float)
        r = np.asarray(self.rss, float)
        keep = s >= skip * max(self.n, 1)
        s, r = s[keep], r[keep]
        if s.size < 3:
            return {"samples": int(s.size)}
        a = np.vstack([s, np.ones_like(s)]).T
        coef, *_ = np.linalg.lstsq(a, r, rcond=None)
        resid = r - a @ coef
        dof = max(s.size - 2, 1)
        sigma2 = float(resid @ resid) / dof
        se = float(np.sqrt(sigma2 / np.sum((s - s.mean()) ** 2)))
        return {"samples": int(s.size), "slope_b_per_step": float(coef[0]), "se_b": se,
                "resid_mib": float(np.sqrt(sigma2)) / 2**20,
                "first_mib": float(r[0]) / 2**20, "last_mib": float(r[-1]) / 2**20}


TRACE: Path | None = None


def report(label: str, sampler: Sampler, wall_s: float, skip: float,
           step_s: float = 1.0) -> None:
    f = sampler.fit(skip)
    if TRACE is not None:
        TRACE.write_text("".join(f"{s} {r}\n" for s, r in zip(sampler.steps, sampler.rss,
                                                               strict=True)))
    print(f"{label}: {sampler.n:,} steps in {wall_s:.1f} s ({1e3 * wall_s / max(sampler.n, 1):.2f}"
          f" ms/step), peak RSS {peak_rss_bytes() / 2**20:.0f} MiB")
    if "slope_b_per_step" not in f:
        print(f"  too few samples ({f['samples']}) for a slope; lower --every")
        return
    slope, se = f["slope_b_per_step"], f["se_b"]
    flat = abs(slope) <= 2 * se
    per_day = slope * SECONDS_PER_DAY / step_s / 2**20
    print(f"  RSS {f['first_mib']:.1f} -> {f['last_mib']:.1f} MiB over the last "
          f"{100 * (1 - skip):.0f} % ({f['samples']} samples); growth {slope:+.1f} B/step "
          f"+- {se:.1f} (1 s.e.), residual spread {f['resid_mib']:.2f} MiB; "
          + ("flat within noise (|slope| <= 2 s.e.)" if flat else
             f"growing: {per_day:+.0f} MiB per simulated day at this rate"))


def bench_run(duration_s: float, every: int, skip: float) -> None:
    import meshnet.runner as runner
    from meshnet.scenario import load_scenario

    sc = load_scenario("starlink_550_training")
    grid = sc.grid(duration_s=duration_s, step_s=sc.run.step_s)
    sampler = Sampler(every)
    inner = runner.snapshot_stream
    runner.snapshot_stream = lambda *a, **k: sampler.wrap(inner(*a, **k))
    out = Path(tempfile.mkdtemp(prefix="bench-memory-")) / "run"
    try:
        t0 = time.perf_counter()
        runner.run_scenario(sc, grid, out, plots=False, progress=False)
        wall = time.perf_counter() - t0
    finally:
        runner.snapshot_stream = inner
    report(f"meshnet run starlink_550_training, {len(grid):,} steps of {sc.run.step_s:g} s",
           sampler, wall, skip, sc.run.step_s)
    _remove(out.parent)


def bench_links(duration_s: float, every: int, skip: float, scenario: str) -> None:
    import meshnet.links.model as lm
    from meshnet.io.links_dataset import write_links_dataset
    from meshnet.scenario import load_scenario

    sc = load_scenario(scenario)
    grid = sc.grid(duration_s=duration_s, step_s=sc.run.step_s)
    sampler = Sampler(every)
    inner = lm.model_tables
    lm.model_tables = lambda *a, **k: sampler.wrap(inner(*a, **k))
    out = Path(tempfile.mkdtemp(prefix="bench-memory-")) / "links"
    try:
        t0 = time.perf_counter()
        write_links_dataset(sc, grid, out, progress=False)
        wall = time.perf_counter() - t0
    finally:
        lm.model_tables = inner
    report(f"meshnet links {scenario}, {len(grid):,} steps of {sc.run.step_s:g} s",
           sampler, wall, skip, sc.run.step_s)
    _remove(out.parent)


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--which", choices=("run", "links", "both"), default="both")
    ap.add_argument("--duration", type=float, default=86_400.0,
                    help="simulated seconds (default: one day)")
    ap.add_argument("--every", type=int, default=100, help="steps between RSS samples")
    ap.add_argument("--skip", type=float, default=0.1,
                    help="fraction of the run left out of the fit (start-up)")
    ap.add_argument("--links-scenario", default="starlink_gen1")
    ap.add_argument("--trace", type=Path, help="also write the (step, RSS bytes) samples here")
    args = ap.parse_args()
    if not Path("/proc/self/statm").exists():
        sys.exit("bench_memory needs Linux /proc")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    # One process per bench: the peak RSS of one must not include the other's.
    if args.which == "both":
        import subprocess

        for which in ("run", "links"):
            subprocess.run([sys.executable, __file__, "--which", which, "--duration",
                            str(args.duration), "--every", str(args.every), "--skip",
                            str(args.skip), "--links-scenario", args.links_scenario],
                           check=True)
        return
    global TRACE
    TRACE = args.trace
    if args.which == "run":
        bench_run(args.duration, args.every, args.skip)
    else:
        bench_links(args.duration, args.every, args.skip, args.links_scenario)


if __name__ == "__main__":
    main()
