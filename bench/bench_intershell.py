"""Inter-shell laser links on a multi-shell scenario: station reachability, link figures, cost.

Run: ``python bench/bench_intershell.py [--scenario starlink_gen1] [--duration 600] [--step 1]
[--terminals 1] [--order balanced|lifetime]``. ``--terminals 0`` gives the islands of the
fixed topology alone; ``--order lifetime`` ranks candidates by lifetime only (no shell-pair
rounds), to compare.

Prints per run: the fraction of (station, station) pairs reachable per step (mean, min; the
stations do not relay), the mean number of UP inter-shell links, their mean length, the
duration of the inter-shell links that broke within the run, the breaks by reason, and the
cost per step of the inter-shell layer (median, max).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter

import numpy as np


def main(argv=None) -> None:
    from meshnet.links import intershell
    from meshnet.links.intershell import inter_shell_mask, station_reachability
    from meshnet.links.model import link_model, model_tables
    from meshnet.links.reasons import ISL, REASON_NAMES, UP
    from meshnet.scenario import load_scenario
    from meshnet.world import build_world

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="starlink_gen1")
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--step", type=float, default=1.0)
    p.add_argument("--terminals", type=int, default=1)
    p.add_argument("--order", choices=("balanced", "lifetime"), default="balanced")
    args = p.parse_args(argv)

    sc = load_scenario(args.scenario)
    sc = dataclasses.replace(sc, links=dataclasses.replace(
        sc.links, inter_shell_terminals=args.terminals))
    if args.order == "lifetime":
        def lifetime_only(a, b, life_s, length_km, pair_id, pair_count):
            return np.lexsort((b, a, length_km, -life_s)).astype(np.int64)
        intershell.balanced_order = lifetime_only
    world = build_world(sc)
    grid = sc.grid(duration_s=args.duration, step_s=args.step)
    model = link_model(sc, grid, world)
    shell = intershell.shell_labels(world.constellation, model.n_sats)
    layer = getattr(model.isl, "layer", None)
    cost_s = []
    if layer is not None:
        inner = layer.step

        def timed(*a, **k):
            t0 = time.perf_counter()
            out = inner(*a, **k)
            cost_s.append(time.perf_counter() - t0)
            return out
        layer.step = timed

    frac, n_up, len_up, never = [], [], [], None
    breaks: Counter = Counter()
    start_ns: dict[int, int] = {}
    durations_s = []
    no_gsl = Counter()
    for t_ns, table in model_tables(model, world.constellation, grid):
        snap = table.to_snapshot(model.node_names, model.node_kind)
        reach = station_reachability(snap, model.n_sats)
        iu = np.triu_indices(reach.shape[0], 1)
        frac.append(reach[iu].mean())
        never = ~reach if never is None else never & ~reach
        gsl_deg = np.bincount(table.b[table.kind != ISL] - model.n_sats,
                              minlength=model.n_ground)
        for g in np.nonzero(gsl_deg == 0)[0]:
            no_gsl[str(model.node_names[model.n_sats + g])] += 1
        x = (table.kind == ISL) & inter_shell_mask(table.a, table.b, shell)
        up = x & (table.state == UP)
        n_up.append(int(up.sum()))
        if up.any():
            len_up.append(float(table.length_km[up].mean()))
        keys = table.a[x].astype(np.int64) * (1 << 32) + table.b[x]
        for key, st, rs in zip(keys.tolist(), table.state[x].tolist(),
                               table.reason[x].tolist(), strict=True):
            if st == 0:
                breaks[REASON_NAMES[rs]] += 1
                if key in start_ns:
                    durations_s.append((t_ns - start_ns.pop(key)) / 1e9)
            elif key not in start_ns:
                start_ns[key] = t_ns
    print(f"{args.scenario}: {len(frac)} steps of {args.step:g} s, inter_shell_terminals = "
          f"{args.terminals}, order = {args.order}")
    print(f"  station pairs reachable per step: mean {100 * np.mean(frac):.2f} %, "
          f"min {100 * np.min(frac):.2f} %")
    if never is not None:
        print(f"  station pairs never reachable: {int(never[iu].sum())}")
    if no_gsl:
        print(f"  station-steps with no satellite in view: {dict(no_gsl.most_common(10))}")
    print(f"  UP inter-shell links: mean {np.mean(n_up):.1f} (min {min(n_up)}, max "
          f"{max(n_up)}); mean length {np.mean(len_up) if len_up else float('nan'):.1f} km")
    if durations_s:
        print(f"  inter-shell links broken in the run: {len(durations_s)}, mean duration "
              f"{np.mean(durations_s):.1f} s (median {np.median(durations_s):.1f} s; links up "
              "at the start count from the start); still assigned at the end: "
              f"{len(start_ns)}")
    print(f"  breaks by reason: {dict(breaks.most_common())}")
    if cost_s:
        ms = 1e3 * np.asarray(cost_s)
        print(f"  inter-shell layer: first step {ms[0]:.1f} ms, then median "
              f"{np.median(ms[1:]) if ms.size > 1 else ms[0]:.2f} ms, max "
              f"{ms[1:].max() if ms.size > 1 else ms[0]:.2f} ms per step")


if __name__ == "__main__":
    main()
