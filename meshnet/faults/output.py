"""``faults.parquet`` (one row per fault event) and the fault lines of the summaries.

Columns: ``event`` (int32), ``kind``, ``cause`` (scheduled / random), ``effect`` (failed /
lasers / none for a head or a station's own outage), ``target`` (text), ``node_ids``
(list<int32>: satellites ``0..N-1``, ground stations ``N..``; empty for a region, whose
satellites change with time), ``node_names`` (list<string>), ``heads`` (list<int32>, the failed
head of each node of a terminal event), ``start_s``, ``end_s`` (float64 seconds after the
epoch; ``inf``: never recovers).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

FAULTS_SCHEMA = pa.schema([
    ("event", pa.int32()),
    ("kind", pa.string()),
    ("cause", pa.string()),
    ("effect", pa.string()),
    ("target", pa.string()),
    ("node_ids", pa.list_(pa.int32())),
    ("node_names", pa.list_(pa.string())),
    ("heads", pa.list_(pa.int32())),
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
])


def faults_table(schedule) -> pa.Table:
    """The schedule's events as a table with :data:`FAULTS_SCHEMA`."""
    ev = schedule.events
    cols = {k: (list(v) if isinstance(v, list) else v.tolist()) for k, v in ev.items()}
    return pa.table(cols, schema=FAULTS_SCHEMA)


def write_faults(path, schedule, metadata=None) -> None:
    """Write ``faults.parquet`` atomically (nothing is written when ``schedule`` is None)."""
    if schedule is None:
        return
    from ..io.datasets import AtomicParquetWriter

    with AtomicParquetWriter(path, FAULTS_SCHEMA, metadata) as w:
        w.write(faults_table(schedule))


def fault_summary(schedule, t0_ns: int, t1_ns: int, link_s_by_reason: dict | None = None,
                  heads: int | None = None) -> dict | None:
    """Fault figures of a run: events by kind and cause, head-hours and link-time lost.

    ``link_s_by_reason``: link-seconds reported DOWN with each fault reason (rows x step).
    """
    if schedule is None:
        return None
    cause = np.asarray(schedule.events["cause"], dtype=str)
    return {
        "events": len(schedule),
        "events_by_kind": schedule.counts_by_kind(),
        "random_events": int((cause == "random").sum()),
        "head_hours_lost": float(schedule.head_hours_lost(t0_ns, t1_ns, heads)),
        "link_s_down_by_fault_reason": dict(link_s_by_reason or {}),
    }


def summary_lines(f: dict | None, indent: str = "", width: int = 23) -> list[str]:
    """Lines for the printed reports (empty without faults)."""
    if not f:
        return []
    kinds = ", ".join(f"{k} {v}" for k, v in f["events_by_kind"].items()) or "none"
    lost = f.get("link_s_down_by_fault_reason") or {}
    lost_txt = ", ".join(f"{k} {v / 3600:.2f}" for k, v in lost.items()) or "none"
    return [
        f"{indent}{'fault events':<{width}}{f['events']} ({kinds}; {f['random_events']} random)",
        f"{indent}{'lost to faults':<{width}}{f['head_hours_lost']:.2f} laser-head hours; "
        f"link-hours DOWN by reason: {lost_txt}",
    ]
