"""``meshnet paths``: per-step graphs of a scenario, routed.

A Hypatia directory is stepped with Hypatia's semantics (:mod:`meshnet.routing.hypatia`);
every other scenario goes through the laser link model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import MeshnetError
from .latency import LatencyBound
from .units import NS_PER_S

CHUNK_STEPS = 200


def scenario_snapshots(scenario, world, grid, progress=False, on_positions=None):
    """Yield the scenario's :class:`~meshnet.graph.Snapshot` at every step of ``grid``.

    ``on_positions(t_ns, r_km)``, if given, is called with the satellites' Earth-fixed
    positions before each snapshot is yielded.
    """
    if world.hypatia is not None:
        yield from _hypatia_snapshots(world, grid, progress, on_positions)
        return
    from .links import LinkModel
    from .runner import snapshot_stream

    step_s = grid.step_ns / NS_PER_S if len(grid) > 1 else scenario.run.step_s
    model = LinkModel(scenario.links, scenario.ground, world.constellation, world.ground, step_s)
    from .links.model import attach_faults

    attach_faults(model, scenario, world, grid)
    for _k, t_ns, r_km, _table, snap in snapshot_stream(scenario, world, grid, model,
                                                         progress):
        if on_positions is not None:
            on_positions(t_ns, r_km)
        yield snap


def _hypatia_snapshots(world, grid, progress, on_positions=None):
    from .orbits.propagate import propagate
    from .routing.hypatia import hypatia_snapshot, hypatia_topology
    from .runner import _progress

    topology = hypatia_topology(world.hypatia)
    bar = _progress(len(grid), progress, "steps")
    try:
        for c0 in range(0, len(grid), CHUNK_STEPS):
            sub = grid[c0:c0 + CHUNK_STEPS]
            r_km = propagate(world.constellation, sub).r_km
            for i in range(len(sub)):
                if on_positions is not None:
                    on_positions(int(sub.t_ns[i]), r_km[i])
                yield hypatia_snapshot(topology, r_km[i], int(sub.t_ns[i]))
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def relay_mask(scenario, world) -> np.ndarray:
    """Satellites relay; ground stations only with ``ground_relay`` (never for Hypatia)."""
    mask = np.ones(world.n_nodes, dtype=bool)
    if world.hypatia is not None or not scenario.routing.ground_relay:
        mask[world.n_sats:] = False
    return mask


def run_paths(scenario, grid, src: str, dst: str, out: Path, progress=True) -> str:
    """Trace ``src`` -> ``dst`` over ``grid``, write the table to ``out``, return a summary."""
    from .routing import make_policy
    from .routing.trace import resolve_node, trace_paths
    from .world import build_world

    world = build_world(scenario)
    names = world.node_names
    src_id = resolve_node(src, names, world.n_sats)
    dst_id = resolve_node(dst, names, world.n_sats)
    if src_id == dst_id:
        raise MeshnetError(f"--src and --dst name the same node ({names[src_id]})")
    policy = make_policy(scenario.routing, world.n_nodes, relay_mask(scenario, world))
    bounds_s = []
    bound = LatencyBound.for_world(scenario, world)

    def record_bound(t_ns, r_km):
        bounds_s.append(float(bound.one_way_s([src_id], [dst_id], r_km)[0]))

    trace = trace_paths(scenario_snapshots(scenario, world, grid, progress, record_bound),
                        src_id, dst_id, policy)
    trace = trace.with_bound(2.0 * np.asarray(bounds_s) * 1e3)
    _write_table(Path(out), trace.columns())
    return (f"{names[src_id]} (node {src_id}) -> {names[dst_id]} (node {dst_id}), "
            f"{len(grid)} steps, routing {scenario.routing.policy}\n"
            f"{trace.summary()}\nwrote {out}")


def _write_table(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from .io.datasets import AtomicParquetWriter, atomic_write, prepare_dir

    prepare_dir(path.parent if str(path.parent) else Path("."))
    table = pa.table(columns)
    if path.suffix.lower() == ".parquet":
        with AtomicParquetWriter(path, table.schema) as w:
            w.write(table)
        return
    atomic_write(path, lambda tmp: pacsv.write_csv(table, tmp))
