"""``plus_grid`` on the real Starlink catalogue: how good are its cross-plane links?

Over a window (default 10 minutes at 10 s) of the 2026-02-23 catalogue with ``plus_grid`` and
default limits: the fraction of cross-plane candidate links that are never UP, the median
angular separation (angle at the Earth's centre) of cross-plane pairs at the first step, the
mean UP ISL degree, and the same for in-plane links.

Usage: ``python bench/bench_plus_grid.py [--duration S] [--step S]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

import numpy as np  # noqa: E402
from _data import REAL_TLE  # noqa: E402  (bench/_data.py, beside this script)

from meshnet.links import ISL, link_model, model_tables  # noqa: E402
from meshnet.links.topology import argument_of_latitude_deg  # noqa: E402
from meshnet.scenario import parse_scenario  # noqa: E402
from meshnet.world import build_world  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TLE = REAL_TLE


def catalogue_scenario(tle: Path = TLE, duration_s: float = 600.0, step_s: float = 10.0):
    """The catalogue with ``plus_grid`` and default limits, no ground stations."""
    return parse_scenario(f"""
[scenario]
name = "starlink_2026-02-23_plus_grid"
epoch = 2026-02-23T12:00:00Z
duration_s = {duration_s}
step_s = {step_s}
[constellation]
tle_file = "{tle}"
[ground]
stations = "none"
[links]
topology = "plus_grid"
""")


def separation_deg(r, a, b):
    """Angle at the Earth's centre between the two ends of each link."""
    ra, rb = r[a], r[b]
    c = np.einsum("ij,ij->i", ra, rb) / (np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def measure(sc) -> dict:
    """Figures of ``plus_grid`` over the scenario's window."""
    from meshnet.orbits.propagate import propagate

    world = build_world(sc)
    grid = sc.grid()
    model = link_model(sc, grid, world)
    const = world.constellation
    t0 = time.perf_counter()
    ever_up = None
    degree_sum = 0.0
    cross = None
    for _, table in model_tables(model, const, grid):
        isl = table.kind == ISL
        a, b, up = table.a[isl], table.b[isl], table.up[isl]
        if ever_up is None:
            ever_up = up.copy()
            shell, plane = np.asarray(const.shell), np.asarray(const.plane)
            cross = (shell[a] != shell[b]) | (plane[a] != plane[b])
            pair_a, pair_b = a, b
        else:
            ever_up |= up
        degree_sum += 2.0 * up.sum() / model.n_sats
    elapsed = time.perf_counter() - t0
    orb = propagate(const, grid[0:1])
    r0 = orb.r_km[0]
    sep = separation_deg(r0, pair_a, pair_b)
    u = argument_of_latitude_deg(r0, orb.v_km_s[0])
    dphase = np.abs((u[pair_b] - u[pair_a] + 180.0) % 360.0 - 180.0)
    labelled = int((np.asarray(const.plane) >= 0).sum())
    return {
        "n_sats": model.n_sats, "labelled": labelled, "steps": len(grid),
        "cross_candidates": int(cross.sum()), "inplane_candidates": int((~cross).sum()),
        "cross_never_up_pct": 100.0 * float((~ever_up[cross]).mean()),
        "inplane_never_up_pct": 100.0 * float((~ever_up[~cross]).mean()),
        "cross_median_sep_deg": float(np.median(sep[cross])),
        "cross_p90_sep_deg": float(np.percentile(sep[cross], 90)),
        "cross_median_dphase_deg": float(np.nanmedian(dphase[cross])),
        "mean_up_degree": degree_sum / len(grid),
        "mean_up_degree_labelled": degree_sum / len(grid) * model.n_sats / max(labelled, 1),
        "seconds": elapsed,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--step", type=float, default=10.0)
    args = ap.parse_args(argv)
    if not TLE.exists():
        print(f"skipped: {TLE} not found")
        return 0
    out = measure(catalogue_scenario(TLE, args.duration, args.step))
    print(f"plus_grid on {TLE.name}: {out['n_sats']:,} satellites ({out['labelled']:,} with "
          f"plane labels), {out['steps']} steps of {args.step:g} s")
    print(f"  cross-plane candidates {out['cross_candidates']:,}: never up "
          f"{out['cross_never_up_pct']:.1f} %, separation median "
          f"{out['cross_median_sep_deg']:.2f} deg (90th percentile "
          f"{out['cross_p90_sep_deg']:.2f} deg), phase difference median "
          f"{out['cross_median_dphase_deg']:.2f} deg")
    print(f"  in-plane candidates {out['inplane_candidates']:,}: never up "
          f"{out['inplane_never_up_pct']:.1f} %")
    print(f"  mean UP ISL degree {out['mean_up_degree']:.2f} per satellite, "
          f"{out['mean_up_degree_labelled']:.2f} per labelled satellite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
