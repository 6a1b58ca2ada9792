"""Satellite positions dataset: one Parquet row per (time, satellite).

Columns: ``t`` (timestamp[ns, UTC]), ``t_s`` (seconds from the epoch), ``sat`` (node id, int32),
``name`` (dictionary-encoded string), ``x_km``, ``y_km``, ``z_km`` (ITRS / ECEF), ``lat_deg``,
``lon_deg``, ``alt_km`` (WGS84 geodetic). Rows are time-major (all satellites of step 0, then
step 1, ...). A satellite SGP4 cannot propagate at some step has NaN coordinates there.

The run is propagated and written ``chunk_steps`` steps at a time, so memory stays bounded
however long the run; the file is written under a temporary name and renamed when complete.

Examples
--------
>>> import tempfile, pathlib, datetime as dt, pyarrow.parquet as pq
>>> from meshnet.orbits.config import ShellConfig
>>> from meshnet.orbits.walker import walker_constellation
>>> from meshnet.timegrid import TimeGrid
>>> epoch = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
>>> c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=2,
...                                       sats_per_plane=3)], epoch)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "p.parquet"
>>> write_positions(out, c, TimeGrid.from_duration(epoch, 10, 1), progress=False)
60
>>> pq.read_table(out).column_names[:4]
['t', 't_s', 'sat', 'name']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import MeshnetError
from ..timegrid import TimeGrid
from .datasets import AtomicParquetWriter, run_metadata

#: Rows per written chunk aim at about this many (bounded memory, efficient row groups).
_TARGET_ROWS = 2_000_000


def positions_schema() -> pa.Schema:
    """Arrow schema of the positions dataset."""
    return pa.schema([
        ("t", pa.timestamp("ns", tz="UTC")),
        ("t_s", pa.float64()),
        ("sat", pa.int32()),
        ("name", pa.dictionary(pa.int32(), pa.string())),
        ("x_km", pa.float64()),
        ("y_km", pa.float64()),
        ("z_km", pa.float64()),
        ("lat_deg", pa.float64()),
        ("lon_deg", pa.float64()),
        ("alt_km", pa.float64()),
    ])


def write_positions(path, constellation, grid: TimeGrid, *, chunk_steps: int | None = None,
                    progress: bool = True, scenario=None) -> int:
    """Propagate ``constellation`` over ``grid`` and write the positions dataset to ``path``.

    Parameters
    ----------
    path : path-like
        Output ``.parquet`` file (parent folders are created).
    constellation : Constellation
        Satellites.
    grid : TimeGrid
        Sample times.
    chunk_steps : int, optional
        Steps propagated and written at once (default: about two million rows per chunk).
    progress : bool
        Show a progress bar when there are several chunks.
    scenario : Scenario, optional
        Stored in the file's metadata.

    Returns
    -------
    int
        Number of rows written (steps x satellites).
    """
    from ..orbits.propagate import Orbits, ecef_to_geodetic, propagate

    n_sat, n_t = constellation.n, len(grid)
    if chunk_steps is None:
        chunk_steps = max(1, _TARGET_ROWS // max(n_sat, 1))
    if chunk_steps < 1:
        raise MeshnetError(f"chunk_steps must be >= 1, got {chunk_steps}")
    schema = positions_schema()
    names = pa.array([str(x) for x in constellation.names], type=pa.string())
    sat_ids = np.arange(n_sat, dtype=np.int32)
    epoch_ns = np.datetime64(grid.epoch.replace(tzinfo=None), "ns").astype(np.int64)
    starts = range(0, n_t, chunk_steps)
    bar = None
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_t, unit="step", desc="positions", leave=False)
    meta = run_metadata(scenario, dataset="positions")
    steps0 = min(chunk_steps, n_t)
    buffers = Orbits(np.empty((steps0, n_sat, 3)), np.empty((steps0, n_sat, 3)),
                     np.zeros((steps0, n_sat), dtype=np.uint8))
    try:
        with AtomicParquetWriter(Path(path), schema, metadata=meta) as writer:
            for start in starts:
                sub = grid[start:start + chunk_steps]
                steps = len(sub)
                orbits = propagate(constellation, sub,
                                   out=buffers if steps == steps0 else None)
                r = orbits.r_km.reshape(-1, 3)
                lat, lon, alt = ecef_to_geodetic(r)
                t_ns = np.repeat(epoch_ns + sub.t_ns, n_sat)
                idx = np.tile(sat_ids, steps)
                table = pa.Table.from_arrays([
                    pa.array(t_ns.view("datetime64[ns]"), type=pa.timestamp("ns", tz="UTC")),
                    pa.array(np.repeat(sub.t_s, n_sat)),
                    pa.array(idx),
                    pa.DictionaryArray.from_arrays(pa.array(idx), names),
                    pa.array(r[:, 0]), pa.array(r[:, 1]), pa.array(r[:, 2]),
                    pa.array(lat), pa.array(lon), pa.array(alt),
                ], schema=writer.schema)
                writer.write(table)
                if bar is not None:
                    bar.update(steps)
            rows = writer.rows
    finally:
        if bar is not None:
            bar.close()
    return rows
