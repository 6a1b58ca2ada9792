"""Laser link model benchmarks, each beside a straightforward numpy baseline in one run.

1. ``plus_grid`` with every feasibility check on Starlink Gen1 (4,408 satellites, top-100
   ground stations): meshnet's whole ``LinkModel.step`` and its feasibility kernel against
   the same checks written as vectorised numpy; reasons must agree. Target < 3 ms per step.
2. ``dynamic`` on the real Starlink catalogue (9,543 satellites, 3 terminals): meshnet
   (k-d tree candidates) against the same policy with an all-pairs numpy candidate search;
   the link tables must be identical. Target < 100 ms per step.
3. The real catalogue with ``dynamic`` for one hour at 1 s: acquisitions per terminal per day
   and % of link-time up, beside SpaceX's published fleet figures. This first hour includes
   the start-up transient of a fresh matching; steady-state figures (warm-up discarded, >= 6 h,
   several epochs) come from ``bench/bench_fleet.py``.

Usage: ``python bench/bench_links.py [--quick]``
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

import numpy as np  # noqa: E402
from _data import REAL_TLE  # noqa: E402  (bench/_data.py, beside this script)
from _timing import ratio_text  # noqa: E402

from meshnet.kernels._geometry import OMEGA_EARTH_RAD_S  # noqa: E402
from meshnet.links import LinksConfig, evaluate_links, link_model, model_tables  # noqa: E402
from meshnet.links.dynamic import (  # noqa: E402
    DynamicTopology,
    _inplane_pairs,
    _merge_candidates,
    orbit_normals,
)
from meshnet.scenario import load_scenario, parse_scenario  # noqa: E402
from meshnet.units import R_EARTH_KM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TLE = REAL_TLE

SPACEX_ACQ_PER_LASER_DAY = 30.0   # 266,000 acquisitions/day over > 9,000 lasers (SPIE 2024)
SPACEX_UPTIME_PCT = 99.0          # "more than 99 % link uptime"


# --- baselines -----------------------------------------------------------------------------


def numpy_reasons(r, v, a, b, sun, limits, plane_key):
    """The feasibility checks as plain vectorised numpy (the baseline of benchmark 1)."""
    p = limits.vector()
    ra, rb, va, vb = r[a], r[b], v[a], v[b]
    d = rb - ra
    dist = np.linalg.norm(d, axis=1)
    w = np.array([0.0, 0.0, OMEGA_EARTH_RAD_S])
    via, vib = va + np.cross(w, ra), vb + np.cross(w, rb)
    ha, hb = np.cross(ra, via), np.cross(rb, vib)
    ha /= np.linalg.norm(ha, axis=1)[:, None]
    hb /= np.linalg.norm(hb, axis=1)[:, None]
    hdot = np.einsum("ij,ij->i", ha, hb)
    t = np.clip(-np.einsum("ij,ij->i", ra, d) / np.einsum("ij,ij->i", d, d), 0.0, 1.0)
    low = np.linalg.norm(ra + t[:, None] * d, axis=1)
    ka, kb = plane_key[a], plane_key[b]
    cross = np.where((ka >= 0) & (kb >= 0), ka != kb, hdot < p[6])
    norm_a, norm_b = np.linalg.norm(ra, axis=1), np.linalg.norm(rb, axis=1)
    polar = cross & ((np.abs(ra[:, 2]) > p[3] * norm_a) | (np.abs(rb[:, 2]) > p[3] * norm_b))
    rate = np.linalg.norm(np.cross(d, vib - via), axis=1) > p[4] * dist * dist
    c = d @ sun / dist

    def lit(x):
        along = x @ sun
        perp = x - along[:, None] * sun
        return ~((along < 0) & (np.einsum("ij,ij->i", perp, perp) < R_EARTH_KM**2))

    sun_hit = ((c > p[2]) & lit(ra)) | ((-c > p[2]) & lit(rb))
    reason = np.zeros(a.shape[0], np.int8)
    for code, mask in ((7, sun_hit), (6, rate), (5, polar), (4, dist > p[1]),
                       (3, low < p[0]), (2, (p[5] < 0.5) & (hdot < 0)),
                       (1, ~np.isfinite(dist) | ~np.isfinite(va[:, 0] + vb[:, 0]))):
        reason[mask] = code
    return reason


def allpairs_candidates(r_km, v_km_s, free, k, coplanar_tolerance_deg, range_km):
    """Candidate search testing all N^2 satellite pairs with numpy (baseline of benchmark 2).

    Same definition as :func:`meshnet.links.topology.kdtree_candidates`, computed from the
    full pairwise distance and orbit-normal matrices (in row blocks to bound memory).
    """
    n = r_km.shape[0]
    nf = free.shape[0]
    if nf < 2:
        e = np.empty(0, np.int32)
        return e, e, np.empty(0, np.int8)
    is_free = np.zeros(n, bool)
    is_free[free] = True
    pos = np.where(np.isfinite(r_km), r_km, 1e12)
    h = orbit_normals(r_km, v_km_s)
    h = np.where(np.isfinite(h), h, 10.0)
    chord = 2.0 * math.sin(math.radians(coplanar_tolerance_deg) / 2.0)
    kk = min(k, nf - 1)
    ci, cj, ni, nj = [], [], [], []
    block = 256
    for s in range(0, n, block):
        rows = np.arange(s, min(n, s + block))
        dist = np.linalg.norm(pos[rows, None, :] - pos[None, :, :], axis=2)
        dh = np.linalg.norm(h[rows, None, :] - h[None, :, :], axis=2)
        keep_rows = is_free[rows]
        rows, dist, dh = rows[keep_rows], dist[keep_rows][:, free], dh[keep_rows][:, free]
        ii, jj = np.nonzero(dh <= chord)
        up = rows[ii] < free[jj]
        ci.append(rows[ii[up]])
        cj.append(free[jj[up]])
        dist[rows[:, None] == free[None, :]] = np.inf
        idx = np.argsort(dist, axis=1, kind="stable")[:, :kk]
        ok = np.take_along_axis(dist, idx, axis=1) <= range_km
        ni.append(np.repeat(rows, kk)[ok.ravel()])
        nj.append(free[idx.ravel()[ok.ravel()]])
    ia, ib = _inplane_pairs(r_km, v_km_s, np.concatenate(ci), np.concatenate(cj), free)
    return _merge_candidates(ia, ib, np.concatenate(ni), np.concatenate(nj))


class AllPairsDynamic(DynamicTopology):
    search = staticmethod(allpairs_candidates)


# --- helpers -------------------------------------------------------------------------------


def _gen1():
    for name in ("starlink_gen1", "starlink_gen1_training"):
        try:
            return load_scenario(name)
        except Exception:
            continue
    raise SystemExit("no starlink_gen1 scenario found")


def _real(duration_s: float, reoptimise_s: float | None = None):
    if not TLE.exists():
        return None
    extra = "" if reoptimise_s is None else f"reoptimise_interval_s = {reoptimise_s}\n"
    return parse_scenario(f"""
[scenario]
name = "starlink_2026-02-23"
epoch = 2026-02-23T12:00:00Z
duration_s = {duration_s}
step_s = 1.0
[constellation]
tle_file = "{TLE}"
[ground]
stations = "top100"
[links]
topology = "dynamic"
terminals = 3
{extra}""")


def _ms(x):
    return f"{1e3 * x:8.3f} ms"


# --- benchmarks ----------------------------------------------------------------------------


def bench_plus_grid(n_steps: int) -> dict:
    from meshnet.orbits.propagate import propagate, sun_direction_ecef
    from meshnet.world import build_world

    sc = _gen1()
    sc = sc.replace(links=LinksConfig(topology="plus_grid"))
    world = build_world(sc)
    grid = sc.grid(duration_s=n_steps, step_s=1.0)
    orb = propagate(world.constellation, grid)
    sun = sun_direction_ecef(grid)
    model = link_model(sc, grid, world)
    t_model, t_kernel, t_numpy, mismatches = [], [], [], 0
    for k in range(n_steps):
        r, v = orb.r_km[k], orb.v_km_s[k]
        t0 = time.perf_counter()
        table = model.step(int(grid.t_ns[k]), r, v, sun[k])
        t_model.append(time.perf_counter() - t0)
        grid_links = getattr(model.isl, "base", model.isl)  # +Grid under the inter-shell layer
        a, b = grid_links.a, grid_links.b
        t0 = time.perf_counter()
        reason, _ = evaluate_links(r, v, a, b, sun[k], model.limits, model.plane_key)
        t_kernel.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = numpy_reasons(r, v, a, b, sun[k], model.limits, model.plane_key)
        t_numpy.append(time.perf_counter() - t0)
        mismatches += int((ref != reason).sum())
    isl = table.kind == 0
    skip = 1 if n_steps > 1 else 0  # the first step builds the +Grid and compiles
    out = dict(
        n_sats=world.n_sats, n_links=int(isl.sum()), n_gsl=int((~isl).sum()),
        model=float(np.median(t_model[skip:])), kernel=float(np.median(t_kernel[skip:])),
        numpy=float(np.median(t_numpy[skip:])), mismatches=mismatches, steps=n_steps,
        r_kernel=ratio_text(t_numpy[skip:], t_kernel[skip:]),
        r_model=ratio_text(t_numpy[skip:], t_model[skip:]),
        reasons=np.bincount(table.reason[isl], minlength=8).tolist())
    print(f"\n[1] plus_grid, all feasibility checks, {sc.run.name}: {out['n_sats']:,} satellites,"
          f" {out['n_links']:,} ISLs + {out['n_gsl']} GSLs, {n_steps} steps (median per step)")
    print(f"    meshnet LinkModel.step (ISL+state+GSL+table) {_ms(out['model'])}   target < 3 ms")
    print(f"    meshnet feasibility kernel                   {_ms(out['kernel'])}")
    print(f"    numpy vectorised feasibility (baseline)      {_ms(out['numpy'])}   "
          f"\n    ratio per step, numpy / kernel: {out['r_kernel']}; numpy / whole link step: "
          f"{out['r_model']}")
    print(f"    reason mismatches kernel vs numpy: {mismatches} (over {n_steps} steps); "
          f"reasons at the last step {out['reasons']}")
    return out


def bench_dynamic(n_steps: int) -> dict | None:
    from meshnet.orbits.propagate import propagate, sun_direction_ecef
    from meshnet.world import build_world

    sc = _real(n_steps)
    if sc is None:
        print(f"\n[2] skipped: {TLE} not found")
        return None
    sc = sc.replace(ground=replace(sc.ground, stations="none"))
    world = build_world(sc)
    grid = sc.grid(duration_s=n_steps, step_s=1.0)
    orb = propagate(world.constellation, grid)
    sun = sun_direction_ecef(grid)
    fast = link_model(sc, grid, world)
    slow = link_model(sc, grid, world)
    slow.isl.search = allpairs_candidates
    t_fast, t_slow, same = [], [], True
    for k in range(n_steps):
        args = (int(grid.t_ns[k]), orb.r_km[k], orb.v_km_s[k], sun[k])
        t0 = time.perf_counter()
        ta = fast.step(*args)
        t_fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tb = slow.step(*args)
        t_slow.append(time.perf_counter() - t0)
        same &= all(np.array_equal(getattr(ta, f), getattr(tb, f))
                    for f in ("a", "b", "state", "reason", "length_km"))
    live = ta.state > 0
    deg = (np.bincount(ta.a[live], minlength=world.n_sats)
           + np.bincount(ta.b[live], minlength=world.n_sats))
    out = dict(n_sats=world.n_sats, first_fast=t_fast[0], first_slow=t_slow[0],
               fast=float(np.median(t_fast[1:])), slow=float(np.median(t_slow[1:])),
               max_fast=float(np.max(t_fast[1:])), same=bool(same), steps=n_steps,
               ratio=ratio_text(t_slow[1:], t_fast[1:]),
               mean_degree=float(deg.mean()), max_degree=int(deg.max()))
    print(f"\n[2] dynamic, real catalogue {TLE.name}: {out['n_sats']:,} satellites, 3 terminals,"
          f" {n_steps} steps of 1 s")
    print(f"    meshnet (k-d tree candidates)   first step {_ms(out['first_fast'])}, "
          f"then median {_ms(out['fast'])} (max {_ms(out['max_fast'])})   target < 100 ms")
    print(f"    all-pairs numpy candidates      first step {_ms(out['first_slow'])}, "
          f"then median {_ms(out['slow'])}")
    print(f"    ratio per step (same step, side by side) {out['ratio']} "
          f"({out['first_slow'] / out['first_fast']:.1f}x on the first step); "
          f"identical link tables: {out['same']}; degree mean {out['mean_degree']:.3f}, "
          f"max {out['max_degree']}")
    return out


def bench_fleet(duration_s: float, reoptimise_s: float | None = None) -> dict | None:
    from meshnet.io.links_dataset import LinkAccumulator
    from meshnet.world import build_world

    sc = _real(duration_s, reoptimise_s)
    if sc is None:
        print(f"\n[3] skipped: {TLE} not found")
        return None
    world = build_world(sc)
    grid = sc.grid()
    model = link_model(sc, grid, world)
    acc = LinkAccumulator(model.n_sats, model.n_ground, model.n_terminals, 1.0)
    t0 = time.perf_counter()
    for _, table in model_tables(model, world.constellation, grid):
        acc.add(table)
    wall = time.perf_counter() - t0
    m = acc.mesh()
    policy = ("keep links while feasible" if reoptimise_s is None
              else f"cross-plane links re-optimised every {reoptimise_s:g} s")
    print("\n[3] first-hour fleet figures (start-up transient included; steady state: "
          "bench/bench_fleet.py)")
    print(f"    real catalogue, dynamic, 3 terminals, {policy}, "
          f"{duration_s / 3600:g} h at 1 s ({len(grid):,} steps, {wall:.1f} s wall incl. SGP4 "
          "and ground links)")
    print(f"    {'':34}{'meshnet':>12}{'SpaceX (Jan 2024)':>20}")
    spacex_acq = f"~{SPACEX_ACQ_PER_LASER_DAY:.0f}"
    print(f"    {'acquisitions per terminal per day':34}"
          f"{m['acquisitions_per_terminal_per_day']:12.1f}{spacex_acq:>20}")
    print(f"    {'ISL link-time up (% of assigned)':34}{m['isl_link_time_up_pct']:12.2f}"
          f"{'> 99':>20}")
    print(f"    {'terminal-time up (% of all heads)':34}{m['terminal_time_up_pct']:12.2f}"
          f"{'':>20}")
    print(f"    mean ISL degree {m['mean_isl_degree']:.3f}; mean time up "
          f"{m['mean_isl_time_up_s']:.0f} s; breaks by reason {m['isl_down_rows_by_reason']}")
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, 10 min fleet run")
    ap.add_argument("--skip-fleet", action="store_true", help="leave out benchmark 3")
    args = ap.parse_args(argv)
    quick = args.quick
    print(f"meshnet link benchmarks{' (quick)' if quick else ''}; python {sys.version.split()[0]}"
          f", numba threads {os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    bench_plus_grid(30 if quick else 300)
    bench_dynamic(4 if quick else 12)
    if not args.skip_fleet:
        bench_fleet(600.0 if quick else 3600.0)
        bench_fleet(600.0 if quick else 3600.0, reoptimise_s=300.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
