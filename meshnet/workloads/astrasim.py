"""The mesh as ASTRA-sim sees a network: one analytical description per time window.

ASTRA-sim's analytical network backend reads a YAML file with one entry per network
dimension, innermost first: ``topology`` (``Ring``, ``FullyConnected``, ``Switch``),
``npus_count``, ``bandwidth`` (GB/s per link) and ``latency`` (ns per hop). meshnet writes, for
every model or trace job and every window of ``astrasim_window_s`` seconds of training steps,
the dimensions of the job's layout (fastest first, e.g. TP, DP, PP) with:

- ``npus_count``: the dimension's degree;
- ``bandwidth``: the rate the dimension's node pairs got on the mesh during the window
  (bytes-weighted harmonic mean over the pairs and steps, i.e. total bytes / total time), or
  the scale-up bandwidth when the dimension stays inside nodes;
- ``latency``: the mean one-way path delay of those pairs (the scale-up latency inside nodes);
- ``topology``: ``FullyConnected`` inside a node, ``Ring`` across nodes.

So an ASTRA-sim user can replay a workload on the bandwidths and latencies the orbiting mesh
really offered, window by window (``astrasim/<job>_w<k>.yml``).

Examples
--------
>>> print(network_yaml([("tp", 8, 900.0, 500.0, "FullyConnected"),
...                     ("dp", 4, 12.5, 2.4e6, "Ring")]))
# dims: tp, dp
topology: [ FullyConnected, Ring ]
npus_count: [ 8, 4 ]
bandwidth: [ 900, 12.5 ]  # GB/s
latency: [ 500, 2.4e+06 ]  # ns
<BLANKLINE>
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def network_yaml(dims) -> str:
    """ASTRA-sim analytical network YAML for ``(name, npus, GB/s, ns, topology)`` dims."""
    names = ", ".join(d[0] for d in dims)
    return (f"# dims: {names}\n"
            f"topology: [ {', '.join(d[4] for d in dims)} ]\n"
            f"npus_count: [ {', '.join(str(int(d[1])) for d in dims)} ]\n"
            f"bandwidth: [ {', '.join(f'{d[2]:.6g}' for d in dims)} ]  # GB/s\n"
            f"latency: [ {', '.join(f'{d[3]:.6g}' for d in dims)} ]  # ns\n")


def job_dims(job) -> list[tuple[str, int]]:
    """(dimension, degree) of a workload job, fastest first, degree > 1 only."""
    spec = job.layout_spec
    if job.kind == "model":
        # expert parallelism splits the data-parallel dimension: ep (fastest) x edp
        deg = {"tp": [("tp", spec.tp)], "pp": [("pp", spec.pp)],
               "dp": [("dp", spec.dp)] if spec.ep == 1 else [("ep", spec.ep),
                                                             ("edp", spec.dp // spec.ep)]}
        return [x for d in spec.order.split("-") for x in deg[d] if x[1] > 1]
    dims = sorted({o.dim for o in job.op_list.ops if not o.is_compute})
    out = []
    for d in dims:
        sizes = [o.colls[0].n for o in job.op_list.ops if o.dim == d and o.colls]
        out.append((d, max(sizes)))
    return out


def write_windows(folder, job, step_end_s, window_s: float) -> list[Path]:
    """Write ``<job>_w<k>.yml`` per window for ``job``; returns the paths."""
    stats = job.pair_stats
    n = min(len(stats), len(step_end_s))
    if n == 0:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = job.layout_spec
    win = np.floor(np.asarray(step_end_s[:n]) / window_s).astype(int)
    paths = []
    for k in np.unique(win):
        steps = [stats[i] for i in np.flatnonzero(win == k)]
        dims = []
        for d, deg in job_dims(job):
            rows = [s[d] for s in steps if d in s and s[d]["rate_Bps"]]
            if rows:
                b = sum(r["bytes"] for r in rows)
                t = sum(r["bytes"] / r["rate_Bps"] for r in rows)
                dims.append((d, deg, b / t / 1e9, 1e9 * np.mean([r["delay_s"] for r in rows]),
                             "Ring"))
            else:  # inside nodes
                dims.append((d, deg, spec.scale_up_bps / 8e9, spec.scale_up_latency_s * 1e9,
                             "FullyConnected"))
        if not dims:
            continue
        p = folder / f"{job.name}_w{int(k)}.yml"
        p.write_text(f"# meshnet: job {job.name}, steps ending in [{k * window_s:g}, "
                     f"{(k + 1) * window_s:g}) s\n" + network_yaml(dims))
        paths.append(p)
    return paths
