"""RTT of well-known city pairs against the great-circle bound, on the built-in constellations.

For each scenario, routes every pair with the scenario's routing policy at every step of a
window (10 minutes at 1 s by default) and prints a Markdown table: great-circle distance,
the RTT bound (:mod:`meshnet.latency`), min / mean / max RTT, mean and max stretch, and the
steps flagged above 2x. ``docs/guide.md`` shows its output.

    python bench/city_pairs.py                      # all pairs, the default constellations
    python bench/city_pairs.py --quick              # 60 s window
    python bench/city_pairs.py --scenario starlink_gen1 --duration 600
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

import numpy as np  # noqa: E402

from meshnet.latency import STRETCH_FLAG, LatencyBound  # noqa: E402
from meshnet.pathtrace import relay_mask, scenario_snapshots  # noqa: E402
from meshnet.routing import make_policy  # noqa: E402
from meshnet.routing.trace import resolve_node  # noqa: E402
from meshnet.runner import primary_delay_s  # noqa: E402
from meshnet.scenario import load_scenario  # noqa: E402
from meshnet.world import build_world  # noqa: E402

PAIRS = [("Tokyo", "New York"), ("Tokyo", "London"), ("London", "New York"),
         ("New York", "Sao Paulo"), ("London", "Singapore"), ("Sydney", "Los Angeles"),
         ("Buenos Aires", "Foshan"), ("Shanghai", "Moscow"), ("Paris", "Madrid")]
SCENARIOS = ["starlink_550", "starlink_gen1", "kuiper_630", "telesat_1015"]


def city_pair_table(name: str, duration_s: float, step_s: float, pairs=PAIRS) -> list[dict]:
    """Per pair: bound, RTT min/mean/max (ms), stretch mean/max, flagged and unreachable steps."""
    sc = load_scenario(name)
    world = build_world(sc)
    grid = sc.grid(duration_s=duration_s, step_s=step_s)
    n = world.n_sats
    src = np.array([resolve_node(a, world.node_names, n) for a, _ in pairs], np.int32)
    dst = np.array([resolve_node(b, world.node_names, n) for _, b in pairs], np.int32)
    bound = LatencyBound.for_world(sc, world)
    bound_rtt_ms = 2e3 * bound.one_way_s(src, dst)
    policy = make_policy(sc.routing, world.n_nodes, relay_mask(sc, world))
    rtt = []
    for snap in scenario_snapshots(sc, world, grid):
        routes = policy.route(snap, src, dst, t_ns=snap.t_ns)
        rtt.append(2e3 * primary_delay_s(routes))
    rtt = np.array(rtt)                                      # (steps, pairs), NaN unreachable
    gc_km = np.degrees(np.arccos(np.clip(np.einsum(
        "ij,ij->i", world.ground.r_km[src - n], world.ground.r_km[dst - n]) / (
        np.linalg.norm(world.ground.r_km[src - n], axis=1)
        * np.linalg.norm(world.ground.r_km[dst - n], axis=1)), -1, 1))) * np.pi / 180 * 6371.0
    rows = []
    for k, (a, b) in enumerate(pairs):
        col = rtt[:, k]
        ok = np.isfinite(col)
        st = col[ok] / bound_rtt_ms[k]
        rows.append({
            "scenario": name, "pair": f"{a} - {b}", "great_circle_km": gc_km[k],
            "bound_ms": bound_rtt_ms[k],
            "min_ms": col[ok].min() if ok.any() else np.nan,
            "mean_ms": col[ok].mean() if ok.any() else np.nan,
            "max_ms": col[ok].max() if ok.any() else np.nan,
            "mean_stretch": st.mean() if st.size else np.nan,
            "max_stretch": st.max() if st.size else np.nan,
            "flagged": int(np.count_nonzero(st > STRETCH_FLAG)),
            "unreachable": int(np.count_nonzero(~ok)), "steps": int(col.shape[0]),
        })
    return rows


def markdown(rows) -> str:
    head = ("| scenario | pair | great circle km | bound RTT ms | RTT min / mean / max ms | "
            "stretch mean / max | steps > 2x | unreachable |\n|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['pair']} | {r['great_circle_km']:,.0f} | "
            f"{r['bound_ms']:.1f} | {r['min_ms']:.1f} / {r['mean_ms']:.1f} / {r['max_ms']:.1f} "
            f"| {r['mean_stretch']:.2f} / {r['max_stretch']:.2f} | "
            f"{r['flagged']} of {r['steps']} | {r['unreachable']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", action="append", help="built-in scenario (repeatable)")
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--step", type=float, default=1.0)
    p.add_argument("--quick", action="store_true", help="60 s window")
    args = p.parse_args(argv)
    duration = 60.0 if args.quick else args.duration
    rows = []
    for name in args.scenario or SCENARIOS:
        t0 = time.perf_counter()
        rows += city_pair_table(name, duration, args.step)
        print(f"{name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
