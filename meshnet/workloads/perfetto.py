"""``trace.json``: jobs, ranks, compute, collectives, waits and failures for Perfetto.

Chrome's Trace Event Format (the JSON that https://ui.perfetto.dev and chrome://tracing open):
one process per job (``pid``), one thread per rank and stream (``tid``; the compute stream of
rank ``r`` first, then its ``pp`` and ``dp`` streams), complete events (``"ph": "X"``,
microseconds) for every computation and collective of the traced steps of model and trace jobs
(``trace_steps`` of ``[traffic.jobs.layout]``; the first step by default), ``wait`` events for
the idle gaps on a compute stream (named after what it waited for), a ``steps`` thread with
every training step of every job, and instant events (``"ph": "i"``) plus ``recovery`` slices
for interruptions (``docs/faults.md``). :data:`TRACE_SCHEMA` is the JSON schema the tests check
it against.
"""

from __future__ import annotations

import json

TRACE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "traceEvents": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "ph", "pid", "tid"],
                "properties": {
                    "name": {"type": "string"},
                    "cat": {"type": "string"},
                    "ph": {"enum": ["X", "B", "E", "i", "M"]},
                    "ts": {"type": "number", "minimum": 0},
                    "dur": {"type": "number", "minimum": 0},
                    "pid": {"type": "integer", "minimum": 0},
                    "tid": {"type": "integer", "minimum": 0},
                    "s": {"enum": ["g", "p", "t"]},
                    "args": {"type": "object"},
                },
                "allOf": [
                    {"if": {"properties": {"ph": {"const": "X"}}},
                     "then": {"required": ["ts", "dur"]}},
                    {"if": {"properties": {"ph": {"enum": ["B", "E", "i"]}}},
                     "then": {"required": ["ts"]}},
                    {"if": {"properties": {"ph": {"const": "M"}}},
                     "then": {"required": ["args"]}},
                ],
            },
        },
    },
}

_STREAMS = ("compute", "pp", "dp", "p2p")
_US = 1e6


def _tid(rank: int, stream: str) -> int:
    k = _STREAMS.index(stream) if stream in _STREAMS else len(_STREAMS)
    return 1 + rank * (len(_STREAMS) + 1) + k


def trace_events(engine) -> list[dict]:
    """Events of every job the engine ran (see the module docs)."""
    ev: list[dict] = []
    records = engine.job_records()
    for pid, js in enumerate(engine.jobs, start=1):
        job = js.job
        ev.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                   "args": {"name": f"job {job.name} ({job.kind})"}})
        ev.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": 0,
                   "args": {"name": "steps"}})
        mine = [r for r in records if r["job"] == job.name]
        for r in mine:
            ev.append({"name": f"step {r['step']}", "cat": "step", "ph": "X", "pid": pid,
                       "tid": 0, "ts": r["start_s"] * _US, "dur": r["step_time_s"] * _US,
                       "args": {"compute_s": r["compute_s"],
                                "exposed_comm_s": r["exposed_comm_s"]}})
        starts = {r["step"]: r["start_s"] for r in mine}
        for step, timing in getattr(job, "timings", []):
            if step in starts:
                ev += _step_events(job, timing, starts[step], pid)
        res = js.res
        for rec in ([] if res is None else res.interruptions):
            ev.append({"name": f"interrupted: nodes {rec['nodes']} down", "cat": "failure",
                       "ph": "i", "s": "p", "pid": pid, "tid": 0, "ts": rec["t_s"] * _US,
                       "args": {"policy": rec["policy"],
                                "steps_rolled_back": rec["steps_rolled_back"]}})
            if rec["recovery_s"] < float("inf"):
                ev.append({"name": "recovery", "cat": "failure", "ph": "X", "pid": pid,
                           "tid": 0, "ts": rec["t_s"] * _US, "dur": rec["recovery_s"] * _US})
    return ev


def _step_events(job, timing, t0_s: float, pid: int) -> list[dict]:
    ops = job.model.ops
    node = job.rank_node
    ev: list[dict] = []
    named: set = set()
    last_end: dict = {}
    for i, o in enumerate(ops):
        start, end = timing.start_s[i], timing.end_s[i]
        args = {"op": o.op, **{k: v for k, v in o.args.items()}}
        if o.colls:
            args.update({"size_bytes": o.size_bytes, "calls": o.count,
                         "communicators": len(o.colls),
                         "ranks_per_communicator": o.colls[0].n,
                         "algorithm": o.colls[0].algorithm})
        for r in o.ranks:
            tid = _tid(r, o.stream)
            if tid not in named:
                named.add(tid)
                ev.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"name": f"rank {r} {o.stream} (node {node[r]})"}})
                ev.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"sort_index": tid}})
            if o.stream == "compute":
                gap = start - last_end.get(r, 0.0)
                if gap > 1e-9:
                    ev.append({"name": _wait_name(ops, o, timing), "cat": "wait", "ph": "X",
                               "pid": pid, "tid": tid, "ts": (t0_s + last_end.get(r, 0.0)) *
                               _US, "dur": gap * _US})
                last_end[r] = max(last_end.get(r, 0.0), end)
            ev.append({"name": o.name, "cat": o.dim, "ph": "X", "pid": pid, "tid": tid,
                       "ts": (t0_s + start) * _US, "dur": (end - start) * _US, "args": args})
    return ev


def _wait_name(ops, o, timing) -> str:
    if not o.deps:
        return "wait"
    j = max(o.deps, key=lambda j: timing.end_s[j])
    d = ops[j].dim
    return f"wait ({d})" if d != "compute" else "wait (bubble)"


def write_trace(path, engine) -> int:
    """Write ``trace.json`` for ``engine``'s jobs; returns the number of events."""
    ev = trace_events(engine)
    with open(path, "w") as f:
        json.dump({"traceEvents": ev, "displayTimeUnit": "ms"}, f)
    return len(ev)
