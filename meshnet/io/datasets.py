"""Parquet output that is never half-written: rows go to a temporary file renamed on close.

Examples
--------
>>> import pyarrow as pa, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with AtomicParquetWriter(d / "x.parquet", pa.schema([("a", pa.int32())])) as w:
...     w.write({"a": [1, 2]})
>>> sorted(p.name for p in d.iterdir())
['x.parquet']
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import MeshnetError


def run_metadata(scenario=None, **extra) -> dict[bytes, bytes]:
    """File metadata: meshnet's version, the creation time and the scenario's text."""
    from .. import __version__

    meta = {
        "meshnet_version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if scenario is not None:
        meta["scenario_name"] = scenario.name
        meta["scenario_source"] = str(scenario.source)
        meta["scenario_toml"] = scenario.text
    meta.update({k: (v if isinstance(v, str) else json.dumps(v)) for k, v in extra.items()})
    return {k.encode(): str(v).encode() for k, v in meta.items()}


def prepare_dir(path: Path) -> Path:
    """Create an output directory (and parents), with a clear error if that is impossible."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MeshnetError(f"{path}: cannot create output directory ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise MeshnetError(f"{path}: output directory is not writable")
    return path


def temp_name(path: Path) -> Path:
    """The hidden temporary name an output is written under before it is renamed."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path, write) -> None:
    """Call ``write(tmp_path)`` and rename the result to ``path``; remove it on failure."""
    tmp = temp_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class AtomicOutput:
    """Context-manager protocol of outputs that appear only when complete.

    Subclasses implement ``close()`` (finish and rename into place) and ``abort()`` (remove
    the temporary output); leaving the ``with`` block by an exception aborts.
    """

    def close(self):  # pragma: no cover - interface
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class AtomicParquetWriter(AtomicOutput):
    """Write a Parquet file in row groups; it appears under its name only when closed cleanly.

    Parameters
    ----------
    path : Path
        Final file name.
    schema : pyarrow.Schema
        Columns; metadata may be attached with ``metadata``.
    metadata : dict, optional
        Key/value file metadata (see :func:`run_metadata`).
    """

    def __init__(self, path, schema: pa.Schema, metadata: dict | None = None,
                 compression: str = "zstd"):
        self.path = Path(path)
        prepare_dir(self.path.parent)
        if metadata:
            schema = schema.with_metadata(metadata)
        self.schema = schema
        self._tmp = temp_name(self.path)
        self._writer = pq.ParquetWriter(self._tmp, schema, compression=compression)
        self.rows = 0

    def write(self, columns) -> None:
        """Append one row group from a column dict or a ``pyarrow.Table``."""
        table = columns if isinstance(columns, pa.Table) else pa.table(
            columns, schema=self.schema)
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)


def write_json_atomic(path, obj) -> None:
    """Write JSON to ``path`` through a temporary file."""
    text = json.dumps(obj, indent=2, default=_json_default) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
