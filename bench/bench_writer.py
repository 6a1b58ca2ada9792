"""Cost per step of writing ``links.parquet`` in ``meshnet run``: row-group buffers against
an Arrow table and a row group per step.

The link tables of ``--steps`` steps of Starlink Gen1 (4,408 satellites, 100 stations) and of
the default scenario (``starlink_550_training``, 1,584 satellites) are computed first; then
each writer writes them all (closing the file included), interleaved and repeated:

``per-step table``
    What ``meshnet run`` did before: build an Arrow table of the step (dictionaries rebuilt
    from the names each step) and write it as its own row group, every column
    dictionary-encoded.
``row-group buffer``
    :class:`meshnet.runner.LinkRowWriter`: the step's columns copied into reused buffers,
    one row group per ~64 MB, dictionaries built once.

Prints ms per step (min and median over repeats) and the min and median ratio.

Run: ``python bench/bench_writer.py [--steps 120] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def baseline_write(path, tables, names, epoch_ns, meta):
    """The writer before: an Arrow table and a row group per step."""
    import pyarrow as pa

    from meshnet.io.datasets import AtomicParquetWriter
    from meshnet.links import REASON_NAMES, STATE_NAMES
    from meshnet.runner import LINK_SCHEMA
    from meshnet.units import NS_PER_S

    def _dict(dictionary, codes, index_type=None):
        codes = np.asarray(codes)
        idx = pa.array(codes.astype(np.int32 if index_type is None else np.int8))
        return pa.DictionaryArray.from_arrays(idx, pa.array(list(map(str, dictionary))))

    w = AtomicParquetWriter(path, LINK_SCHEMA, meta)
    for t_ns, table, load, util in tables:
        n = table.a.shape[0]
        w.write(pa.table({
            "t": pa.array(np.full(n, epoch_ns + t_ns, dtype=np.int64)).cast(
                pa.timestamp("ns", tz="UTC")),
            "t_s": np.full(n, t_ns / NS_PER_S),
            "a": table.a.astype(np.int32),
            "b": table.b.astype(np.int32),
            "a_name": _dict(names, table.a),
            "b_name": _dict(names, table.b),
            "kind": _dict(np.array(["isl", "gsl"]), table.kind, pa.int8()),
            "state": _dict(np.array(STATE_NAMES), table.state, pa.int8()),
            "reason": _dict(np.array(REASON_NAMES), table.reason, pa.int8()),
            "length_km": table.length_km,
            "delay_ms": table.length_km / 299_792.458 * 1e3,
            "capacity_gbps": table.capacity_bps / 1e9,
            "load_gbps": load,
            "utilisation": util,
        }, schema=LINK_SCHEMA))
    w.close()


def buffered_write(path, tables, names, epoch_ns, meta):
    from meshnet.runner import LinkRowWriter

    w = LinkRowWriter(path, meta, names, epoch_ns)
    for t_ns, table, load, util in tables:
        w.append(table, t_ns, load, util)
    w.close()


def link_steps(name: str, n_steps: int):
    """``(t_ns, LinkTable, load_gbps, utilisation)`` of ``n_steps`` steps of a scenario."""
    import dataclasses

    from meshnet.links.model import link_tables
    from meshnet.scenario import load_scenario
    from meshnet.world import build_world

    sc = load_scenario(name)
    if sc.ground.stations == "none":
        sc = sc.replace(ground=dataclasses.replace(sc.ground, stations="top100"))
    world = build_world(sc)
    grid = sc.grid(duration_s=n_steps, step_s=1.0)
    rng = np.random.default_rng(1)
    out = []
    for t_ns, table in link_tables(sc, grid, world=world, progress=False):
        up = table.state == 2
        util = np.where(up, rng.random(table.a.shape[0]), 0.0)  # realistic: varied floats
        out.append((t_ns, table, util * 100.0, util))
    return out, world.node_names.astype(str)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-writer-"))
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    for name in ("starlink_gen1", "starlink_550_training"):
        tables, names = link_steps(name, args.steps)
        rows = sum(t[1].a.shape[0] for t in tables)
        times = {"per-step table": [], "row-group buffer": []}
        fns = {"per-step table": baseline_write, "row-group buffer": buffered_write}
        for rep in range(args.repeat):
            order = list(fns) if rep % 2 == 0 else list(reversed(fns))
            for key in order:
                t0 = time.perf_counter()
                fns[key](tmp / f"{key[:3]}.parquet", tables, names, 0, None)
                times[key].append((time.perf_counter() - t0) / len(tables))
        base, new = times["per-step table"], times["row-group buffer"]
        ratios = [a / b for a, b in zip(base, new, strict=True)]
        size = {k: (tmp / f"{k[:3]}.parquet").stat().st_size / 1e6 for k in fns}
        print(f"{name}: {len(tables)} steps, {rows / len(tables):,.0f} link rows a step")
        for key in fns:
            print(f"  {key:<18} {1e3 * min(times[key]):6.2f} ms/step min, "
                  f"{1e3 * statistics.median(times[key]):6.2f} median; {size[key]:.1f} MB")
        print(f"  speed-up min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
