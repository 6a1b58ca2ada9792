"""meshnet against Hypatia's own satgenpy on the Kuiper-630 directory, side by side.

Both write Hypatia's forwarding state (``fstate_<t_ns>.txt``, ``gsl_if_bandwidth_<t_ns>.txt``)
for the same steps of ``../shared/data/hypatia_kuiper_630`` with the routing Hypatia uses for
that directory (``algorithm_free_one_only_over_isls``). The script times both, diffs the
files entry by entry, and checks that every entry where the two disagree is a near-tie: the
two next hops give path lengths within ``--tie-m`` metres (satgenpy propagates with pyephem,
meshnet with SGP4; their positions differ by up to a few hundred metres).

Needs satgenpy: ``pip install -e '.[hypatia]'``. Run: ``python bench/bench_hypatia.py
[--steps 10]`` (satgenpy needs several seconds per step; it needs at least 10 steps).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hypatia_kuiper_630"
STEP_NS = 100_000_000


def run_satgenpy(directory: Path, out_dir: Path, steps: int) -> float:
    """satgenpy's dynamic state for ``steps`` steps of 100 ms; returns seconds per step."""
    from satgen.dynamic_state.generate_dynamic_state import generate_dynamic_state
    from satgen.ground_stations import read_ground_stations_extended
    from satgen.interfaces import read_gsl_interfaces_info
    from satgen.isls import read_isls
    from satgen.tles import read_tles

    gs = read_ground_stations_extended(str(directory / "ground_stations.txt"))
    tles = read_tles(str(directory / "tles.txt"))
    sats = tles["satellites"]
    isls = read_isls(str(directory / "isls.txt"), len(sats))
    gsl = read_gsl_interfaces_info(str(directory / "gsl_interfaces_info.txt"), len(sats),
                                   len(gs))
    desc = dict(line.strip().split("=") for line in
                (directory / "description.txt").read_text().splitlines() if "=" in line)
    out_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    generate_dynamic_state(str(out_dir), tles["epoch"], steps * STEP_NS, STEP_NS, 0, sats, gs,
                           isls, gsl, float(desc["max_gsl_length_m"]),
                           float(desc["max_isl_length_m"]),
                           "algorithm_free_one_only_over_isls", False)
    return (time.perf_counter() - t0) / steps


def run_meshnet(directory: Path, out_dir: Path, steps: int):
    """meshnet's export of the same steps; returns (seconds per step, per-step states)."""
    from meshnet.io.hypatia_export import HypatiaStateWriter
    from meshnet.orbits.propagate import propagate
    from meshnet.routing.hypatia import hypatia_forwarding_state, hypatia_topology
    from meshnet.scenario import load_scenario
    from meshnet.world import build_world

    sc = load_scenario(directory)
    world = build_world(sc)
    topo = hypatia_topology(world.hypatia)
    grid = sc.grid(duration_s=steps * 0.1, step_s=0.1)
    hypatia_forwarding_state(topo, propagate(world.constellation, grid[:1]).r_km[0])  # compile
    t0 = time.perf_counter()
    r_km = propagate(world.constellation, grid).r_km
    states = [(r_km[k], hypatia_forwarding_state(topo, r_km[k], int(grid.t_ns[k])))
              for k in range(len(grid))]
    compute_s = (time.perf_counter() - t0) / steps
    t1 = time.perf_counter()
    with HypatiaStateWriter(topo, out_dir, STEP_NS, steps * STEP_NS) as writer:
        for _, state in states:
            writer.add(state)
    write_s = (time.perf_counter() - t1) / steps
    return compute_s, write_s, writer.path, states, topo


def full_tables(folder: Path, steps: int) -> list[dict]:
    """Hypatia writes the full table first, then changes: rebuild the table at every step."""
    table: dict = {}
    out = []
    for k in range(steps):
        for line in (folder / f"fstate_{k * STEP_NS}.txt").read_text().splitlines():
            cur, dst, nh, cif, nif = line.split(",")
            table[(int(cur), int(dst))] = (int(nh), int(cif), int(nif))
        out.append(dict(table))
    return out


def path_length_m(r_m, state, topo, cur: int, dst: int, nh: int) -> float:
    """Length of cur -> nh, then nh's shortest path to station dst, in metres."""
    n_sats = topo.n_sats
    g = dst - n_sats
    pos_cur = r_m[cur] if cur < n_sats else topo.ground_r_m[cur - n_sats]
    if nh == dst:
        return float(np.linalg.norm(pos_cur - topo.ground_r_m[g]))
    return float(np.linalg.norm(pos_cur - r_m[nh]) + state.dist_m[g, nh])


def _stations_near_range_limit(r_m, topo, boundary_m: float) -> set:
    """Station node ids with a satellite within ``boundary_m`` of ``max_gsl_length_m``."""
    out = set()
    for g in range(topo.n_ground):
        d = np.linalg.norm(r_m - topo.ground_r_m[g], axis=1)
        if np.any(np.abs(d - topo.max_gsl_length_m) < boundary_m):
            out.add(topo.n_sats + g)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10, help="100 ms steps (>= 10)")
    ap.add_argument("--tie-m", type=float, default=1000.0,
                    help="largest path-length difference still counted a near-tie")
    ap.add_argument("--boundary-m", type=float, default=1000.0,
                    help="a satellite this close to the GSL range limit makes a boundary case")
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"skipped: {DATA} not found")
    try:
        import satgen  # noqa: F401
    except ImportError:
        raise SystemExit("needs satgenpy: pip install -e '.[hypatia]'") from None
    steps = max(10, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sat_s = run_satgenpy(DATA, tmp / "satgenpy", steps)
        mesh_s, write_s, mesh_dir, states, topo = run_meshnet(DATA, tmp / "meshnet", steps)
        names_a = sorted(p.name for p in (tmp / "satgenpy").iterdir())
        names_b = sorted(p.name for p in mesh_dir.iterdir())
        bw_same = all((tmp / "satgenpy" / n).read_bytes() == (mesh_dir / n).read_bytes()
                      for n in names_a if n.startswith("gsl_if_bandwidth"))
        ta, tb = full_tables(tmp / "satgenpy", steps), full_tables(mesh_dir, steps)
        total = differ = ties = boundary = 0
        odd = []
        for k in range(steps):
            r_m = states[k][0] * 1000.0
            state = states[k][1]
            near_edge = _stations_near_range_limit(r_m, topo, args.boundary_m)
            for key in ta[k].keys() | tb[k].keys():
                total += 1
                a, b = ta[k].get(key), tb[k].get(key)
                if a == b:
                    continue
                differ += 1
                cur, dst = key
                if dst in near_edge or cur in near_edge:
                    boundary += 1
                    continue
                gap = np.inf
                if a is not None and b is not None and min(a[0], b[0]) >= 0:
                    gap = abs(path_length_m(r_m, state, topo, cur, dst, a[0])
                              - path_length_m(r_m, state, topo, cur, dst, b[0]))
                if gap <= args.tie_m:
                    ties += 1
                elif len(odd) < 5:
                    odd.append((k, key, a, b, gap))
        unexplained = differ - ties - boundary
    print(f"Kuiper-630 Hypatia directory, {steps} steps of 100 ms, every node towards all "
          "100 stations")
    print(f"  satgenpy (Hypatia, pyephem + networkx) {sat_s:10.3f} s per step")
    print(f"  meshnet (SGP4 + Numba)                 {1e3 * mesh_s:10.3f} ms per step, "
          f"+ {1e3 * write_s:.3f} ms per step writing files (the first step writes the "
          "full table)")
    print(f"  ratio, forwarding state                {sat_s / mesh_s:10,.0f}x; with files "
          f"{sat_s / (mesh_s + write_s):,.0f}x")
    print(f"  file names identical: {names_a == names_b}; gsl_if_bandwidth identical: "
          f"{bw_same}")
    print(f"  forwarding entries compared: {total:,}; identical: {total - differ:,} "
          f"({100 * (total - differ) / total:.3f} %)")
    print(f"  differing entries: {differ}: {ties} near-ties (path lengths within "
          f"{args.tie_m:g} m), {boundary} at a station with a satellite within "
          f"{args.boundary_m:g} m of the GSL range limit, {unexplained} unexplained")
    for k, key, a, b, gap in odd:
        print(f"    step {k}: (cur, dst) {key}: satgenpy {a}, meshnet {b}, gap {gap:.0f} m")


if __name__ == "__main__":
    main()
