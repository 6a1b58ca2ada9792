"""``flows.parquet`` of ``meshnet run``, streamed while the run goes on.

The fluid engine hands out finished flows in flow order (:meth:`meshnet.engine.FluidEngine.
release_flows`) and drops them from its tables; :class:`FlowRowWriter` copies them into
bounded, reused column buffers (:class:`meshnet.io.rowgroups.RowGroupBuffer`,
:data:`FLOW_ROWS_PER_GROUP` rows) that become row groups of a hidden part file beside the
output. At the end the file is assembled in flow order: the background flows (the engine's
first rows, held for the whole run), the part's row groups one at a time, then the flows the
engine still holds. Memory is a row group's buffers, whatever the run's length; the file is
the one the whole table written at the end gave (same rows, same order, same schema and
metadata), in row groups of at most :data:`FLOW_ROWS_PER_GROUP` rows.

Examples
--------
>>> import tempfile, pathlib, pyarrow.parquet as pq
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> def rows(ids, job):
...     n = len(ids)
...     z, f = np.zeros(n, np.int32), np.zeros(n)
...     return dict(flow=np.asarray(ids, np.int64), job=np.array([job] * n, object),
...                 train_step=z, phase=z, src=z, dst=z, bytes=f, demand_gbps=f, start_s=f,
...                 end_s=f, finished=np.ones(n, bool), mean_rate_gbps=f, path_changes=z,
...                 reroutes=z, unreachable_s=f, blackholed_s=f)
>>> w = FlowRowWriter(d / "flows.parquet", {}, ["background", "train"], rows_per_group=2)
>>> w.append(rows([1, 2, 3], "train"))
>>> w.close(rows([0], "background"), rows([4], "train"))
>>> pq.read_table(d / "flows.parquet").column("flow").to_pylist()
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .datasets import AtomicParquetWriter, remove_leftovers, temp_name

#: Columns of ``flows.parquet`` (what the whole table written at once was inferred as).
FLOW_SCHEMA = pa.schema([
    ("flow", pa.int64()),
    ("job", pa.string()),
    ("train_step", pa.int32()),
    ("phase", pa.int32()),
    ("src", pa.int32()),
    ("dst", pa.int32()),
    ("bytes", pa.float64()),
    ("demand_gbps", pa.float64()),
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
    ("finished", pa.bool_()),
    ("mean_rate_gbps", pa.float64()),
    ("path_changes", pa.int32()),
    ("reroutes", pa.int32()),
    ("unreachable_s", pa.float64()),
    ("blackholed_s", pa.float64()),
])

#: Rows per row group of the streamed part: 6.6 MB of buffers (101 bytes a row); a day of
#: the default scenario (1.07 million flows) is 17 row groups.
FLOW_ROWS_PER_GROUP = 1 << 16

# The buffers hold the job as a code into the run's job names (a dictionary column); the
# file gets plain strings, as before.
_BUFFER_SCHEMA = pa.schema([pa.field("job", pa.dictionary(pa.int32(), pa.string()))
                            if f.name == "job" else f for f in FLOW_SCHEMA])


class FlowRowWriter:
    """Stream released flows to ``path`` (see the module docstring).

    Parameters
    ----------
    path : Path
        ``flows.parquet``.
    meta : dict
        File metadata (:func:`meshnet.io.datasets.run_metadata`).
    job_names : list of str
        ``"background"`` then every job's name: the values of the ``job`` column.
    rows_per_group : int, optional
        Rows per streamed row group (default :data:`FLOW_ROWS_PER_GROUP`).
    """

    def __init__(self, path, meta, job_names, rows_per_group: int | None = None):
        from .rowgroups import RowGroupBuffer

        self.path = path
        self.meta = meta
        self._codes = {str(name): i for i, name in enumerate(job_names)}
        remove_leftovers(path.with_name(path.name + ".part"))
        self._part_path = temp_name(path.with_name(path.name + ".part"))
        # Opened now, not at the first full row group: the writer's own buffers are then
        # part of the start-up, not a step in the middle of the run.
        self._part = pq.ParquetWriter(self._part_path, FLOW_SCHEMA, compression="zstd")
        self.buf = RowGroupBuffer(_BUFFER_SCHEMA, self._write_part,
                                  {"job": pa.array([str(n) for n in job_names])},
                                  rows_per_group or FLOW_ROWS_PER_GROUP)

    def _write_part(self, batch: pa.RecordBatch) -> None:
        cols = [c.cast(pa.string()) if f.name == "job" else c
                for f, c in zip(batch.schema, batch.columns, strict=True)]
        self._part.write_batch(pa.record_batch(cols, schema=FLOW_SCHEMA),
                               row_group_size=batch.num_rows)

    def append(self, records: dict) -> None:
        """Flows handed out by the engine (``flow_records`` columns), in flow order."""
        n = int(records["flow"].shape[0])
        if n == 0:
            return
        cols = dict(records)
        cols["job"] = np.fromiter((self._codes[j] for j in records["job"]), np.int32, n)
        self.buf.append(n, **cols)

    @property
    def rows(self) -> int:
        """Flows streamed so far (written or buffered)."""
        return self.buf.rows_written + self.buf.n

    def close(self, head: dict, tail: dict) -> None:
        """Write ``flows.parquet``: ``head`` (background flows), the streamed flows, ``tail``
        (flows still held by the engine); the part file is removed."""
        try:
            self.buf.close()
            if self._part is not None:
                self._part.close()
                self._part = None
            with AtomicParquetWriter(self.path, FLOW_SCHEMA, self.meta) as out:
                out.write(pa.table(head, schema=FLOW_SCHEMA))
                if self._part_path.exists():
                    part = pq.ParquetFile(self._part_path)
                    for i in range(part.num_row_groups):
                        out.write(part.read_row_group(i))
                out.write(pa.table(tail, schema=FLOW_SCHEMA))
        finally:
            self._part_path.unlink(missing_ok=True)

    def abort(self) -> None:
        """Remove the part file (the run failed)."""
        try:
            if self._part is not None:
                self._part.close()
        finally:
            self._part = None
            self._part_path.unlink(missing_ok=True)
