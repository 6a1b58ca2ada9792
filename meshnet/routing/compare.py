"""``meshnet compare``: routing policies over several seeds and epochs, one table and plots.

The variants are the scenario's ``[compare]`` table (:func:`meshnet.runner.comparison_variants`;
without one, the scenario's own policy alone). Each variant runs once per seed and per epoch
(``--seeds 1 2 3``, ``--epochs 2026-02-23T00:00:00Z 2026-02-23T06:00:00Z``, or
``[compare] seeds`` / ``epochs``; default the scenario's own), into
``<out>/<epoch index>-seed<seed>/<variant>/``. Then ``<out>`` gets:

``compare.csv``
    One row per run: the figures below.
``compare.md``
    Mean and spread (min..max) over the runs of each variant.
``compare.png``
    Six panels, one point per run and a bar at the variant's mean: RTT stretch against the
    great circle (median and p95 over ground-station pairs), path churn (path changes per
    flow), throughput against the LP optimum (with ``[routing.optimum] enabled = true``; add
    ``--optimum``), black-holed and looped traffic, training step time.

Examples
--------
>>> COLUMNS[:4]
['variant', 'seed', 'epoch', 'mean_step_s']
"""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import datetime
from pathlib import Path

import numpy as np

COLUMNS = ["variant", "seed", "epoch", "mean_step_s", "p95_step_s", "rtt_stretch_median",
           "rtt_stretch_p95", "path_changes_per_flow", "reroutes", "throughput_fraction",
           "util_fraction", "comm_speedup_bound", "blackholed_s", "looped_pair_steps",
           "background_carried_gbps"]

#: (column, panel title, unit) of the six panels of compare.png.
PANELS = [
    ("rtt_stretch_median", "RTT stretch vs great circle (median)", "x"),
    ("rtt_stretch_p95", "RTT stretch vs great circle (p95)", "x"),
    ("path_changes_per_flow", "path churn", "changes per flow"),
    ("throughput_fraction", "throughput vs LP optimum", "fraction"),
    ("blackholed_s", "black-holed traffic (+ looped pair-steps)", "flow-s"),
    ("mean_step_s", "training step time", "s"),
]


def row_of(label: str, seed: int, epoch: str, s: dict) -> dict:
    """The :data:`COLUMNS` of one run's summary."""
    job = s["jobs"][0] if s.get("jobs") else {}
    st = s.get("latency_stretch") or {}
    opt = s.get("optimum") or {}
    ls = s.get("linkstate") or {}
    return {
        "variant": label, "seed": seed, "epoch": epoch,
        "mean_step_s": job.get("mean_step_s"), "p95_step_s": job.get("p95_step_s"),
        "rtt_stretch_median": st.get("median_stretch"), "rtt_stretch_p95": st.get("p95_stretch"),
        "path_changes_per_flow": s["path_changes"] / max(s["flows"], 1),
        "reroutes": s["reroutes"],
        "throughput_fraction": opt.get("mean_throughput_fraction"),
        "util_fraction": opt.get("mean_util_fraction"),
        "comm_speedup_bound": opt.get("mean_comm_speedup_bound"),
        "blackholed_s": s["blackholed_s"],
        "looped_pair_steps": ls.get("looped_pair_steps"),
        "background_carried_gbps": s["background_carried_gbps"],
    }


@dataclasses.dataclass
class CompareResult:
    out_dir: Path
    rows: list

    def report(self) -> str:
        return markdown_table(self.rows) + f"\noutputs: {self.out_dir}/compare.csv, " \
            "compare.md, compare.png and one folder per run\n"


def _fmt(values) -> str:
    v = np.array([x for x in values if x is not None], float)
    if v.size == 0:
        return "-"
    if v.size == 1 or v.min() == v.max():
        return f"{v.mean():.4g}"
    return f"{v.mean():.4g} ({v.min():.3g}..{v.max():.3g})"


def markdown_table(rows) -> str:
    """Mean (min..max) of each column per variant."""
    cols = [c for c in COLUMNS[3:]]
    lines = ["| variant | runs | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for label in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == label]
        lines.append(f"| {label} | {len(mine)} | "
                     + " | ".join(_fmt([r[c] for r in mine]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path) -> None:
    """compare.png: the six panels of :data:`PANELS`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(r["variant"] for r in rows))
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), constrained_layout=True)
    x = np.arange(len(labels))
    for ax, (col, title, unit) in zip(axes.ravel(), PANELS, strict=True):
        means = []
        for i, label in enumerate(labels):
            v = np.array([r[col] for r in rows if r["variant"] == label and r[col] is not None],
                         float)
            means.append(v.mean() if v.size else np.nan)
            if v.size:
                ax.plot(np.full(v.size, i) + np.linspace(-0.15, 0.15, v.size), v, "o",
                        color="k", ms=4, zorder=3)
        ax.bar(x, np.nan_to_num(means), color="tab:blue", alpha=0.6)
        if col == "blackholed_s":
            loops = [np.nanmean([r["looped_pair_steps"] or 0 for r in rows
                                 if r["variant"] == label]) for label in labels]
            if any(loops):
                ax2 = ax.twinx()
                ax2.plot(x, loops, "s--", color="tab:red", label="looped pair-steps")
                ax2.set_ylabel("looped pair-steps", color="tab:red")
        if col.startswith("rtt_stretch"):
            lo = np.nanmin(means) if not all(np.isnan(means)) else 1.0
            ax.set_ylim(bottom=max(1.0, 0.9 * lo) if lo > 1 else 1.0)
        if col == "throughput_fraction":
            ax.axhline(1.0, color="tab:green", lw=1, ls="--")
            if all(np.isnan(means)):
                ax.text(0.5, 0.5, "enable [routing.optimum]\n(meshnet compare --optimum)",
                        ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.set_xticks(x)
        ax.set_xticklabels([lb.removeprefix("routing-") for lb in labels], rotation=30,
                           ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{len(rows)} runs: {len(labels)} variants x "
                 f"{len({(r['seed'], r['epoch']) for r in rows})} seeds/epochs")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_compare(scenario, out_dir, *, seeds=None, epochs=None, duration_s=None, step_s=None,
                optimum=False, progress=True) -> CompareResult:
    """Run every variant of ``scenario`` for every seed and epoch; write the table and plots."""
    from ..io.datasets import output_folder, write_json_atomic
    from ..runner import _run_scenario_into, comparison_variants
    from ..timegrid import parse_epoch

    cmp_cfg = getattr(scenario, "compare", None)
    seeds = list(seeds or getattr(cmp_cfg, "seeds", ()) or [scenario.run.seed])
    epochs = [e if isinstance(e, datetime) else parse_epoch(e)
              for e in (epochs or getattr(cmp_cfg, "epochs", ()) or [scenario.run.epoch])]
    if optimum:
        routing = dataclasses.replace(
            scenario.routing, optimum=dataclasses.replace(scenario.routing.optimum,
                                                          enabled=True))
        scenario = scenario.replace(routing=routing)
    variants = comparison_variants(scenario) or [
        (f"routing-{scenario.routing.policy}", scenario)]
    final = Path(out_dir)
    rows = []
    with output_folder(final, ("compare.csv",)) as tmp:
        summaries = {}
        for ei, epoch in enumerate(epochs):
            for seed in seeds:
                run_dir = f"{ei}-seed{seed}"
                (tmp / run_dir).mkdir()
                for label, variant in variants:
                    sc = variant.replace(run=dataclasses.replace(variant.run, epoch=epoch,
                                                                 seed=int(seed)))
                    grid = sc.grid(duration_s=duration_s, step_s=step_s)
                    if progress:
                        print(f"[{run_dir} {label}]", flush=True)
                    (tmp / run_dir / label).mkdir()
                    res = _run_scenario_into(sc, grid, tmp / run_dir / label,
                                             final / run_dir / label, plots=False,
                                             progress=progress)
                    summaries[f"{run_dir}/{label}"] = res.summary
                    rows.append(row_of(label, int(seed), epoch.isoformat(), res.summary))
        with open(tmp / "compare.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
        (tmp / "compare.md").write_text(markdown_table(rows))
        write_json_atomic(tmp / "comparison.json", summaries)
        plot(rows, tmp / "compare.png")
    return CompareResult(out_dir=final, rows=rows)


def add_commands(sub, add_time_args, add_set, add_quiet) -> None:
    """The ``compare`` and ``graphs`` sub-commands (called by :mod:`meshnet.cli`)."""
    p = sub.add_parser(
        "compare", help="routing policies over seeds and epochs: table and plots",
        description="Run the scenario's [compare] variants (or its policy) for every seed and "
                    "epoch; write compare.csv, compare.md and compare.png "
                    "(docs/routing_research.md).")
    p.add_argument("scenario")
    add_time_args(p)
    p.add_argument("--seeds", type=int, nargs="+", metavar="N", help="seeds (default: the "
                   "scenario's)")
    p.add_argument("--epochs", nargs="+", metavar="ISO", help="epochs, ISO 8601 UTC "
                   "(default: the scenario's)")
    p.add_argument("--optimum", action="store_true",
                   help="also solve the LP optimum ([routing.optimum] enabled = true)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output directory (default: runs/<scenario name>-compare)")
    add_set(p)
    add_quiet(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "graphs", help="per-step graphs as arrays (NPZ) for learned routing",
        description="Run the scenario and write one NPZ per step: node, edge and demand "
                    "arrays (schema: docs/routing_research.md).")
    p.add_argument("scenario")
    add_time_args(p)
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output directory (default: runs/<scenario name>-graphs)")
    add_set(p)
    add_quiet(p)
    p.set_defaults(func=_cmd_graphs)


def _epochs(values):
    from ..errors import MeshnetError
    from ..timegrid import parse_epoch

    out = []
    for v in values or []:
        try:
            out.append(parse_epoch(v))
        except ValueError:
            raise MeshnetError(f"--epochs: {v!r} is not an ISO 8601 UTC instant such as "
                               "2026-02-23T00:00:00Z") from None
    return out


def _cmd_compare(args) -> int:
    from ..cli import _check_size, _grid, _scenario, run_folder

    sc = _scenario(args)
    grid = _grid(sc, args)
    _check_size(sc, grid, args)
    out = args.out if args.out is not None else run_folder(sc.name + "-compare")
    res = run_compare(sc, out, seeds=args.seeds, epochs=_epochs(args.epochs),
                      duration_s=args.duration, step_s=args.step, optimum=args.optimum,
                      progress=not args.quiet)
    print(res.report())
    return 0


def _cmd_graphs(args) -> int:
    from ..cli import _check_size, _grid, _scenario, run_folder
    from ..learn.graphs import write_graphs

    sc = _scenario(args)
    grid = _grid(sc, args)
    _check_size(sc, grid, args)
    out = args.out if args.out is not None else run_folder(sc.name + "-graphs")
    n = write_graphs(sc, grid, out, progress=not args.quiet)
    print(f"meshnet graphs: {n} steps -> {out}/step_*.npz (schema.json)")
    print(json.dumps({"steps": n, "out": str(out)}))
    return 0
