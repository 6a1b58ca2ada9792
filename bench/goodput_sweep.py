"""Goodput against checkpoint interval and recovery policy, beside the Young/Daly model.

Runs a scenario with a training job under ``[faults]`` (default: ``suncatcher_81_radiation``,
81 satellites, radiation restarts of the accelerators) once per (recovery policy, checkpoint
interval), on a process pool, and prints a Markdown table of goodput, interruptions, lost work
and mean recovery. With ``--plot FILE.png`` it draws goodput against the interval per policy,
with Daly's expected goodput for the same failure rate, checkpoint time and restart cost
(``meshnet.faults.checkpoint``). ``docs/guide.md`` shows its output.

    python bench/goodput_sweep.py --plot docs/img/goodput_sweep.png
    python bench/goodput_sweep.py --quick          # 3 h runs, fewer intervals
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

INTERVALS_S = [30.0, 120.0, 300.0, 900.0, 1800.0, 3600.0]
POLICIES = {"restart": 0, "spare": 2, "elastic": 0}


def one_run(scenario_name: str, policy: str, spares: int, interval_s: float,
            duration_s: float, seed: int) -> dict:
    """Run the scenario with the first job's resilience replaced; the job's figures."""
    import meshnet
    from meshnet.scenario import load_scenario

    sc = load_scenario(scenario_name)
    job = sc.traffic.jobs[0]
    res = dataclasses.replace(job.resilience, recovery=policy, spares=spares,
                              checkpoint_interval_s=interval_s)
    jobs = (dataclasses.replace(job, resilience=res),) + tuple(sc.traffic.jobs[1:])
    sc = sc.replace(traffic=dataclasses.replace(sc.traffic, jobs=jobs),
                    run=dataclasses.replace(sc.run, seed=seed))
    with tempfile.TemporaryDirectory() as out:
        result = meshnet.run(sc, sc.grid(duration_s=duration_s), out, plots=False,
                             progress=False)
    j = result.summary["jobs"][0]
    r = j["resilience"]
    return {"policy": policy, "spares": spares, "interval_s": interval_s, "seed": seed,
            "goodput": j["goodput"], "interruptions": len(j["interruptions"]),
            "lost_work_s": r["lost_work_s"], "mean_recovery_s": r["mean_recovery_s"],
            "mean_checkpoint_s": r["mean_checkpoint_s"], "ranks": j["nodes"],
            "reference_step_s": j["reference_step_s"]}


def daly_curve(scenario_name: str, intervals, restart_s: float, delta_s: float):
    """Daly's goodput for the scenario's job-level accelerator failure rate."""
    from meshnet.faults.checkpoint import daly_goodput
    from meshnet.scenario import load_scenario

    sc = load_scenario(scenario_name)
    per_day = (sc.faults.accelerator_upsets_per_device_day
               * sc.traffic.compute.accelerators_per_node * sc.constellation.cluster.n_sats)
    mtbf_s = 86400.0 / per_day
    return mtbf_s, [daly_goodput(t, delta_s, mtbf_s, restart_s) for t in intervals]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="suncatcher_81_radiation")
    p.add_argument("--duration", type=float, default=43200.0, help="seconds per run")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--plot", help="write goodput against interval to this PNG")
    args = p.parse_args(argv)
    intervals = [60.0, 900.0, 3600.0] if args.quick else INTERVALS_S
    duration = 10800.0 if args.quick else args.duration
    tasks = [(args.scenario, pol, sp, t, duration, 7 + s)
             for pol, sp in POLICIES.items() for t in intervals for s in range(args.seeds)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(one_run, *zip(*tasks, strict=True)))
    print(f"{len(rows)} runs of {duration:g} s in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    print("| policy | checkpoint every s | goodput | interruptions | lost work s | "
          "mean recovery s |\n|---|---|---|---|---|---|")
    for r in rows:
        spares = f" ({r['spares']} spares)" if r["spares"] else ""
        print(f"| {r['policy']}{spares} | "
              f"{r['interval_s']:g} | {100 * r['goodput']:.1f} % | {r['interruptions']} | "
              f"{r['lost_work_s']:.0f} | {r['mean_recovery_s']:.0f} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        from meshnet.scenario import load_scenario

        sc = load_scenario(args.scenario)
        job_res = sc.traffic.jobs[0].resilience
        delta = float(np.mean([r["mean_checkpoint_s"] for r in rows]))
        fine = np.geomspace(min(intervals) / 2, max(intervals) * 2, 200)
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for k, pol in enumerate(POLICIES):
            mine = [r for r in rows if r["policy"] == pol]
            x = [r["interval_s"] for r in mine]
            y = [100 * r["goodput"] for r in mine]
            ax.plot(x, y, "o", color=f"C{k}", label=f"{pol}: meshnet")
            if pol == "elastic":
                continue  # no roll-back to a checkpoint: Daly's model does not apply
            rec = [r["mean_recovery_s"] for r in mine if r["interruptions"]]
            restart = float(np.mean(rec)) if rec else float(job_res.restart_s)
            mtbf_s, g = daly_curve(args.scenario, fine, restart, delta)
            ax.plot(fine, 100 * np.asarray(g), "-", color=f"C{k}", alpha=0.6,
                    label=f"{pol}: Daly, R = {restart:.0f} s")
        ax.set_xscale("log")
        ax.set_xlabel("checkpoint interval [s]")
        ax.set_ylabel("goodput [%]")
        ax.set_title(f"{args.scenario}: job MTBF {mtbf_s / 60:.0f} min, checkpoint "
                     f"{delta * 1e3:.0f} ms, {duration / 3600:g} h runs")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
