"""Propagation benchmark: meshnet.propagate against a loop of skyfield EarthSatellite.at().

Cases: the built-in ``starlink_gen1`` (five Walker shells, 4,408 satellites) and the real
Starlink catalogue in ../shared/data (9,543 satellites), each over 600 steps of 1 s. The
baseline is what a skyfield user writes: one ``EarthSatellite`` per satellite, each evaluated
at all 600 times at once (``sat.at(t).frame_xyz(itrs)``, with one shared ``Time`` array so its
rotation matrices are computed once). Both run in this process; their ITRS positions must agree
within 1 m. Printed: ms per step for each and the ratio, plus meshnet's exact-SGP4 engines
(``method="numba"``: SGP4 at every step; ``method="sgp4"``: sgp4's ``SatrecArray``).

Usage::

    python bench/bench_propagation.py            # full baseline (about a minute)
    python bench/bench_propagation.py --quick    # baseline on 400 satellites, extrapolated
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _timing import interleaved, ratio_text, ratios

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT.parent / "shared" / "data" / "starlink_2026-02-23.tle"


def _best_of(fn, repeat):
    best = np.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def skyfield_loop(constellation, ids, grid):
    """The baseline: one EarthSatellite per satellite, vectorised over the times."""
    from skyfield.api import EarthSatellite
    from skyfield.framelib import itrs

    from meshnet.orbits._skyfield import timescale

    ts = timescale()
    t = grid.skyfield_times(ts)
    out = np.empty((len(grid), len(ids), 3))
    for j, k in enumerate(ids):
        sat = EarthSatellite.from_satrec(constellation.satrecs[k], ts)
        out[:, j] = sat.at(t).frame_xyz(itrs).km.T
    return out


def run_case(name, constellation, grid, baseline_sats, repeat, base_rounds=3):
    from meshnet.orbits.propagate import propagate

    n, steps = constellation.n, len(grid)
    # warm up: kernel coefficients (cached on the constellation) and Numba compile / cache load
    propagate(constellation, grid[:120], method="interp")
    propagate(constellation, grid[:2], method="numba")
    t_mesh, orbits = _best_of(lambda: propagate(constellation, grid), repeat)
    from meshnet.orbits.propagate import Orbits

    buf = Orbits(np.empty_like(orbits.r_km), np.empty_like(orbits.v_km_s),
                 np.empty_like(orbits.status))
    t_reuse, _ = _best_of(lambda: propagate(constellation, grid, out=buf), repeat)
    t_exact, exact = _best_of(lambda: propagate(constellation, grid, method="numba"), repeat)
    t_sgp4, _ = _best_of(lambda: propagate(constellation, grid, method="sgp4"), repeat)
    ids = np.arange(n) if baseline_sats is None else np.linspace(
        0, n - 1, min(baseline_sats, n)).round().astype(int)
    ref = skyfield_loop(constellation, ids, grid)
    # Baseline and meshnet side by side, interleaved; the baseline is extrapolated to all
    # satellites when it runs on a subset.
    side = interleaved({"base": lambda: skyfield_loop(constellation, ids, grid),
                        "mesh": lambda: propagate(constellation, grid)}, base_rounds,
                       warm=False)
    side["base"] = [t * n / len(ids) for t in side["base"]]
    t_base = statistics.median(side["base"])
    ok = orbits.status[:, ids] == 0
    err_m = float(np.abs(orbits.r_km[:, ids] - ref)[ok].max() * 1000.0)
    ms = lambda s: s / steps * 1e3  # noqa: E731
    print(f"\n{name}: {n:,} satellites x {steps} steps "
          f"({int((orbits.status != 0).any(axis=0).sum())} satellites with SGP4 errors)")
    good = exact.status == 0
    interp_m = float(np.abs(orbits.r_km - exact.r_km)[good].max() * 1000.0)
    print(f"  meshnet propagate (auto)     {ms(t_mesh):8.3f} ms/step  (SGP4 knots + interpolation,"
          f" max {interp_m:.1e} m from exact SGP4)")
    print(f"  meshnet auto, out= reused    {ms(t_reuse):8.3f} ms/step  (no page faults of fresh "
          "output arrays, as in a chunked run)")
    print(f"  meshnet method='numba'       {ms(t_exact):8.3f} ms/step  (exact SGP4 every step)")
    print(f"  meshnet method='sgp4'        {ms(t_sgp4):8.3f} ms/step  (SatrecArray + rotation)")
    extra = "" if len(ids) == n else f"  (measured on {len(ids)} satellites, scaled to {n:,})"
    print(f"  skyfield EarthSatellite loop {ms(t_base):8.3f} ms/step{extra}")
    print(f"  ratio skyfield / meshnet, side by side: {ratio_text(side['base'], side['mesh'])}")
    print(f"  max |meshnet - skyfield|     {err_m:8.2e} m over {ok.sum():,} positions "
          f"({'OK' if err_m < 1.0 else 'FAIL'}: < 1 m)")
    return statistics.median(ratios(side["base"], side["mesh"])), ms(t_mesh), err_m


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="skyfield baseline on 400 satellites only, extrapolated")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=5,
                        help="best of N for meshnet timings (the machine may be shared)")
    args = parser.parse_args(argv)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "meshnet-numba"))

    import numba

    from meshnet.orbits.constellation import load_constellation
    from meshnet.orbits.tle import tle_constellation
    from meshnet.scenario import load_scenario
    from meshnet.timegrid import TimeGrid

    print(f"numba threads: {numba.get_num_threads()}, cpus: {os.cpu_count()}, "
          f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    baseline = 400 if args.quick else None
    results = []
    sc = load_scenario("starlink_gen1")
    gen1 = load_constellation(sc.constellation, sc.run.epoch, sc.base_dir)
    grid = TimeGrid.from_duration(sc.run.epoch, float(args.steps), 1.0)
    results.append(("starlink_gen1", *run_case("starlink_gen1", gen1, grid, baseline,
                                               args.repeat)))
    if CATALOGUE.exists():
        cat = tle_constellation(CATALOGUE, label_planes=False)
        from datetime import UTC, datetime
        grid = TimeGrid.from_duration(datetime(2026, 2, 23, tzinfo=UTC), float(args.steps), 1.0)
        results.append(("catalogue", *run_case(f"real catalogue ({CATALOGUE.name})", cat, grid,
                                               baseline, args.repeat)))
    else:
        print(f"\n(real catalogue not found at {CATALOGUE}; skipped)")
    print("\nsummary (targets: >= 20x the skyfield loop, < 2 ms/step for 4,408 satellites):")
    ok = True
    for name, ratio, ms_step, err in results:
        print(f"  {name:14s} {ratio:7.1f}x (median side by side)  {ms_step:7.3f} ms/step  "
              f"max error {err:.1e} m")
        ok &= err < 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
