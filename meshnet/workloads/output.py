"""Run outputs of workload jobs: summary figures, report lines, trace.json, ASTRA-sim files."""

from __future__ import annotations

from .job import WorkloadJob
from .simulate import BREAKDOWN_KEYS

#: Window of the ASTRA-sim network descriptions (seconds of emulated time).
ASTRASIM_WINDOW_S = 60.0


def add_workload_outputs(out_dir, engine, summary) -> None:
    """Add each workload job's figures to ``summary`` and write ``trace.json`` and
    ``astrasim/*.yml`` into ``out_dir`` (nothing when the run has no workload job)."""
    from .astrasim import write_windows
    from .perfetto import write_trace

    jobs = [js.job for js in engine.jobs]
    if not any(isinstance(j, WorkloadJob) for j in jobs):
        return
    records = engine.job_records()
    for job, out in zip(jobs, summary["jobs"], strict=True):
        if isinstance(job, WorkloadJob):
            out["workload"] = job.summary()
            ends = [r["end_s"] for r in records if r["job"] == job.name]
            write_windows(out_dir / "astrasim", job, ends, ASTRASIM_WINDOW_S)
    write_trace(out_dir / "trace.json", engine)


def report_lines(jobs) -> list[str]:
    """Step-time breakdown lines of the workload jobs in a run summary."""
    lines = []
    for j in jobs:
        w = j.get("workload")
        if not w:
            continue
        bd = w["breakdown_s"]
        lines.append(f"workload ({j['job']}): {w['shape']}")
        if bd["compute"] is None:
            lines.append("  no step finished")
            continue
        parts = ", ".join(f"{k} {bd[k]:.3f}" for k in BREAKDOWN_KEYS if bd[k] > 5e-4
                          or k == "compute")
        lines.append(f"  mean step {w['mean_step_s']:.3f} s = {parts} s")
        mb = ", ".join(f"{k} {v / 1e9:.3g} GB" for k, v in w["mesh_bytes_per_step"].items())
        lines.append(f"  mesh traffic per step: {mb or 'none (all inside nodes)'}")
    if lines:
        lines.append("  (trace.json opens in https://ui.perfetto.dev; astrasim/*.yml: the mesh "
                     "per window for ASTRA-sim)")
    return lines
