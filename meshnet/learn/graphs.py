"""Per-step graphs of a run as arrays, for learned routing (``meshnet graphs``).

:func:`write_graphs` runs a scenario (orbits, links, routing, allocation, as ``meshnet run``)
and writes one compressed NPZ file per step, ``step_000000.npz`` ..., plus ``schema.json``
(this schema) into a folder that appears only once complete. Node ids are meshnet's:
satellites ``0..N-1`` then ground stations; positions are ITRS (Earth-fixed) kilometres.

Schema of one step (``n`` nodes, ``m`` directed edges, ``k`` demand pairs):

==================  ============  ==========================================================
array               shape, dtype  meaning
==================  ============  ==========================================================
``t_s``             (), f8        time since the scenario epoch
``node_pos_km``     (n, 3), f8    position (ground stations fixed on the Earth)
``node_vel_km_s``   (n, 3), f8    velocity in the Earth-fixed frame (0 for ground)
``node_kind``       (n,), i1      0 satellite, 1 ground station
``node_state``      (n,), i1      1 when the node has at least one link up, else 0
``edge_index``      (2, m), i4    source and target node of each directed edge; every
                                  reported link (up or not) appears in both directions
``edge_kind``       (m,), i1      0 inter-satellite, 1 ground-satellite
``edge_length_km``  (m,), f8      link length
``edge_delay_s``    (m,), f8      one-way propagation delay (length / c)
``edge_capacity_bps`` (m,), f8    capacity (0 unless up)
``edge_load_bps``   (m,), f8      mean traffic on this direction over the step
``edge_state``      (m,), i1      0 down, 1 acquiring, 2 up
``edge_reason``     (m,), i1      why down (meshnet.links.REASON_NAMES), 0 unless down
``demand_src``      (k,), i4      pairs with traffic during the step
``demand_dst``      (k,), i4
``demand_bps``      (k,), f8      offered rate (``inf``: elastic, e.g. training traffic)
``demand_rate_bps`` (k,), f8      mean rate carried over the step
``route_edges``     (r,), i4      edges (rows of ``edge_index``) of each pair's primary
``route_indptr``    (k + 1,), i8  path under the scenario's policy: CSR over demands
==================  ============  ==========================================================

A loader for PyTorch Geometric is in ``examples/pyg_loader.py``.

Examples
--------
>>> sorted(SCHEMA)[:3]
['demand_bps', 'demand_dst', 'demand_rate_bps']
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import numpy as np

from ..units import C_KM_S, NS_PER_S

#: name -> (dtype, shape, meaning); also written to ``schema.json``.
SCHEMA = {
    "t_s": ("float64", "()", "time since the scenario epoch, s"),
    "node_pos_km": ("float64", "(n, 3)", "ITRS position, km"),
    "node_vel_km_s": ("float64", "(n, 3)", "ITRS velocity, km/s (0 for ground)"),
    "node_kind": ("int8", "(n,)", "0 satellite, 1 ground station"),
    "node_state": ("int8", "(n,)", "1 with a link up, else 0"),
    "edge_index": ("int32", "(2, m)", "source, target of each directed edge"),
    "edge_kind": ("int8", "(m,)", "0 ISL, 1 GSL"),
    "edge_length_km": ("float64", "(m,)", "link length, km"),
    "edge_delay_s": ("float64", "(m,)", "propagation delay, s"),
    "edge_capacity_bps": ("float64", "(m,)", "capacity, bit/s (0 unless up)"),
    "edge_load_bps": ("float64", "(m,)", "mean load over the step, bit/s"),
    "edge_state": ("int8", "(m,)", "0 down, 1 acquiring, 2 up"),
    "edge_reason": ("int8", "(m,)", "reason code when down (meshnet.links.REASON_NAMES)"),
    "demand_src": ("int32", "(k,)", "source node"),
    "demand_dst": ("int32", "(k,)", "destination node"),
    "demand_bps": ("float64", "(k,)", "offered rate, bit/s; inf = elastic"),
    "demand_rate_bps": ("float64", "(k,)", "carried mean rate over the step, bit/s"),
    "route_indptr": ("int64", "(k + 1,)", "CSR offsets of each demand's primary path"),
    "route_edges": ("int32", "(r,)", "edges (columns of edge_index) of the primary paths"),
}

MARKERS = ("schema.json",)


def step_arrays(world, r_km, v_km_s, table, snapshot, rec, flows, sent_before, active_before,
                dt_s) -> dict:
    """The arrays of one step (see :data:`SCHEMA`)."""
    n = world.n_nodes
    pos = np.zeros((n, 3))
    vel = np.zeros((n, 3))
    pos[:world.n_sats] = r_km
    vel[:world.n_sats] = v_km_s
    if world.n_ground:
        pos[world.n_sats:] = world.ground.r_km
    a = np.concatenate([table.a, table.b]).astype(np.int32)
    b = np.concatenate([table.b, table.a]).astype(np.int32)

    def twice(x):  # one value per link -> one per direction (a->b rows, then b->a)
        return np.concatenate([x, x])

    # Load per direction: the snapshot's directed edges carry link_id = row of the table.
    load = np.zeros(a.shape[0])
    if snapshot.n_edges and rec is not None:
        rate = rec.edge_bytes * 8.0 / dt_s
        tail = snapshot.edge_sources()
        row = snapshot.link_id.astype(np.int64)
        forward = tail == table.a[row]
        load[np.where(forward, row, row + table.a.shape[0])] = rate
    # Demands: pairs whose flows were active at the step's start or sent during it.
    sent = flows.view("bytes_sent").copy()
    sent[:sent_before.shape[0]] -= sent_before
    touched = sent > 0
    touched[active_before[active_before < flows.n]] = True
    idx = np.flatnonzero(touched)
    key = flows.src[idx].astype(np.int64) * n + flows.dst[idx]
    ukey, inv = np.unique(key, return_inverse=True)
    inv = inv.ravel()
    dem = flows.demand_bps[idx]
    elastic = np.bincount(inv, weights=~np.isfinite(dem), minlength=ukey.size) > 0
    demand = np.where(elastic, np.inf, np.bincount(inv, weights=np.where(np.isfinite(dem), dem,
                                                                         0.0),
                                                   minlength=ukey.size))
    carried = np.bincount(inv, weights=sent[idx] * 8.0 / dt_s, minlength=ukey.size)
    d_src, d_dst = (ukey // n).astype(np.int32), (ukey % n).astype(np.int32)
    # Primary paths, as rows of edge_index.
    route_counts = np.zeros(ukey.size, np.int64)
    route_parts = []
    routes = None if rec is None else rec.routes
    if routes is not None and ukey.size:
        rkey = rec.pair_src.astype(np.int64) * n + rec.pair_dst
        order = np.argsort(rkey)
        pos_r = np.searchsorted(rkey[order], ukey)
        for i in range(ukey.size):
            j = pos_r[i]
            if j >= rkey.size or rkey[order[j]] != ukey[i]:
                continue
            nodes = routes.primary_path(int(order[j]))
            if nodes is None:
                continue
            e = routes.edges_of(int(routes.pair_path_indptr[order[j]]
                                    + np.argmax(routes.path_fraction[
                                        routes.pair_path_indptr[order[j]]:
                                        routes.pair_path_indptr[order[j] + 1]])))
            row = snapshot.link_id[e].astype(np.int64)
            fwd = snapshot.edge_sources()[e] == table.a[row]
            route_parts.append(np.where(fwd, row, row + table.a.shape[0]).astype(np.int32))
            route_counts[i] = e.size
    route_indptr = np.zeros(ukey.size + 1, np.int64)
    np.cumsum(route_counts, out=route_indptr[1:])
    degree_up = np.bincount(a[twice(table.state) == 2], minlength=n)
    return {
        "t_s": np.float64(table.t_ns / NS_PER_S),
        "node_pos_km": pos, "node_vel_km_s": vel,
        "node_kind": np.asarray(world.node_kind, np.int8),
        "node_state": (degree_up > 0).astype(np.int8),
        "edge_index": np.stack([a, b]),
        "edge_kind": twice(table.kind).astype(np.int8),
        "edge_length_km": twice(table.length_km),
        "edge_delay_s": twice(table.length_km) / C_KM_S,
        "edge_capacity_bps": twice(table.capacity_bps),
        "edge_load_bps": load,
        "edge_state": twice(table.state).astype(np.int8),
        "edge_reason": twice(table.reason).astype(np.int8),
        "demand_src": d_src, "demand_dst": d_dst, "demand_bps": demand,
        "demand_rate_bps": carried,
        "route_indptr": route_indptr,
        "route_edges": (np.concatenate(route_parts) if route_parts
                        else np.zeros(0, np.int32)),
    }


def write_graphs(scenario, grid, out_dir, progress: bool = False) -> int:
    """Run ``scenario`` over ``grid`` and write one NPZ per step into ``out_dir``.

    Returns the number of steps written. The folder is replaced only once complete.
    """
    from ..io.datasets import output_folder
    from ..links import LinkModel
    from ..links.model import attach_faults
    from ..orbits.propagate import propagate, sun_direction_ecef
    from ..runner import CHUNK_STEPS, _lookahead_steps, build_traffic, make_engine
    from ..world import build_world

    world = build_world(scenario)
    compute, jobs, background = build_traffic(scenario, world)
    engine = make_engine(scenario, world, jobs, background, compute)
    step_s = len(grid) > 1 and grid.step_ns / NS_PER_S or scenario.run.step_s
    link_model = LinkModel(scenario.links, scenario.ground, world.constellation, world.ground,
                           step_s)
    faults = attach_faults(link_model, scenario, world, grid)
    if faults is not None:
        engine.set_outages(*faults.node_outages())
    horizon = _lookahead_steps(scenario, step_s)
    names = world.node_names
    count = 0
    with output_folder(Path(out_dir), MARKERS) as tmp:
        window: deque = deque()

        def advance():
            nonlocal count
            k, r, v, table, snap = window.popleft()
            future = [w[4] for w in window] or None
            before = engine.flows.view("bytes_sent").copy()
            active = np.asarray(engine._active).copy()
            rec = engine.step(snap, step_s, future=future)
            arrays = step_arrays(world, r, v, table, snap, rec, engine.flows, before, active,
                                 step_s)
            np.savez_compressed(tmp / f"step_{k:06d}.npz", **arrays)
            count += 1

        for c0 in range(0, len(grid), CHUNK_STEPS):
            sub = grid[c0:c0 + CHUNK_STEPS]
            orbits = propagate(world.constellation, sub)
            sun = sun_direction_ecef(sub)
            for i in range(len(sub)):
                t_ns = int(sub.t_ns[i])
                table = link_model.step(t_ns, orbits.r_km[i], orbits.v_km_s[i], sun[i])
                snap = table.to_snapshot(names, world.node_kind)
                window.append((c0 + i, orbits.r_km[i].copy(), orbits.v_km_s[i].copy(), table,
                               snap))
                if len(window) > horizon:
                    advance()
        while window:
            advance()
        meta = {"scenario": scenario.name, "steps": count, "step_s": step_s,
                "routing": scenario.routing.policy, "node_names": [str(x) for x in names],
                "arrays": {k: {"dtype": d, "shape": s, "meaning": m}
                           for k, (d, s, m) in SCHEMA.items()}}
        (tmp / "schema.json").write_text(json.dumps(meta, indent=1))
    return count


def load_step(path) -> dict:
    """The arrays of one ``step_*.npz`` file as a dict."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
