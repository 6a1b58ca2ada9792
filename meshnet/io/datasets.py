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

import contextlib
import datetime as _dt
import json
import math
import os
import re
import shutil
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
    """The hidden temporary name an output is written under before it is renamed.

    ``.<name>.<pid>.tmp`` beside ``path``; :func:`remove_leftovers` removes those of dead
    processes.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


_LEFTOVER = re.compile(r"(?P<pid>\d+)\.(?P<kind>tmp|old)")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM)
        return True
    return True


def remove_leftovers(path) -> None:
    """Remove temporaries that killed runs left beside ``path`` (``.<name>.<pid>.tmp|old``).

    Only those whose process is gone are touched, so a concurrent run is left alone. If a
    run was killed between moving the previous output aside and moving the new one in (a
    window of two renames), ``path`` is missing and the previous output is put back.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    try:
        entries = [e for e in parent.iterdir() if e.name.startswith(prefix)]
    except OSError:
        return
    for e in sorted(entries, key=lambda e: e.name):
        m = _LEFTOVER.fullmatch(e.name[len(prefix):])
        if m is None or _pid_alive(int(m["pid"])):
            continue
        if m["kind"] == "old" and not os.path.lexists(path):
            with contextlib.suppress(OSError):
                os.replace(e, path)
                continue
        _remove(e)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()


@contextlib.contextmanager
def output_folder(path, markers: tuple[str, ...] = ()):
    """Write a whole output folder, which replaces ``path`` only once it is complete.

    Yields a temporary sibling folder ``.<name>.<pid>.tmp``; when the block ends normally
    the previous ``path`` (if any) is renamed to ``.<name>.<pid>.old``, the temporary folder
    is renamed to ``path`` and the old one removed. On any exception (KeyboardInterrupt
    too) the temporary folder is removed and ``path`` is untouched. A kill at any instant
    thus leaves ``path`` holding the previous run or the new one, never a mix; the next
    call removes what the killed run left (see :func:`remove_leftovers`).

    An existing ``path`` is replaced only if it is empty or holds one of ``markers`` (files
    an earlier output of the same kind writes), so ``--out`` naming some other folder
    (a home folder, the current folder) is refused rather than swapped away.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with output_folder(d) as tmp:
    ...     _ = (tmp / "a.txt").write_text("x")
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt']
    """
    shown = Path(path)
    final = Path(os.path.abspath(shown))
    if final.exists() and not final.is_dir():
        raise MeshnetError(f"--out {shown}: exists and is not a folder; choose another --out")
    cwd = Path(os.path.abspath(os.getcwd()))
    if final == cwd or final in cwd.parents:
        raise MeshnetError(f"--out {shown}: is the current folder or holds it; name a new "
                           "folder for the outputs")
    if final.is_dir() and markers and not any((final / m).exists() for m in markers):
        try:
            empty = not any(final.iterdir())
        except OSError as exc:
            raise MeshnetError(f"--out {shown}: cannot read the folder ({exc.strerror})") from None
        if not empty:
            raise MeshnetError(
                f"--out {shown}: exists and holds files not from an earlier meshnet output "
                f"(no {' or '.join(markers)}); name a new or empty folder, it is replaced whole")
    parent = prepare_dir(final.parent)
    remove_leftovers(final)
    tmp = temp_name(final)
    _remove(tmp)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise MeshnetError(f"{shown}: cannot create output folder ({exc.strerror})") from None
    try:
        yield tmp
        old = parent / f".{final.name}.{os.getpid()}.old"
        if os.path.lexists(final):
            os.replace(final, old)
        os.replace(tmp, final)
        _remove(old)
    except BaseException:
        _remove(tmp)
        raise


def _check_file_target(path: Path) -> None:
    if Path(path).is_dir():
        raise MeshnetError(f"--out {path}: is a folder; name a file to write")


def atomic_write(path, write) -> None:
    """Call ``write(tmp_path)`` and rename the result to ``path``; remove it on failure."""
    _check_file_target(path)
    remove_leftovers(path)
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
    compression : str
        Parquet codec.
    use_dictionary : bool or list of str
        Columns to dictionary-encode (all by default); leaving out columns whose values
        rarely repeat (lengths, loads) saves the encoder a failed dictionary attempt.
    write_statistics : bool or list of str
        Columns given min/max statistics (all by default).
    """

    def __init__(self, path, schema: pa.Schema, metadata: dict | None = None,
                 compression: str = "zstd", use_dictionary=True, write_statistics=True):
        self.path = Path(path)
        _check_file_target(self.path)
        prepare_dir(self.path.parent)
        remove_leftovers(self.path)
        if metadata:
            schema = schema.with_metadata(metadata)
        self.schema = schema
        self._tmp = temp_name(self.path)
        self._writer = pq.ParquetWriter(self._tmp, schema, compression=compression,
                                        use_dictionary=use_dictionary,
                                        write_statistics=write_statistics)
        self.rows = 0

    def write(self, columns) -> None:
        """Append one row group from a column dict or a ``pyarrow.Table``."""
        table = columns if isinstance(columns, pa.Table) else pa.table(
            columns, schema=self.schema)
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Append one record batch as one row group (consumed before returning)."""
        if batch.num_rows:
            self._writer.write_batch(batch, row_group_size=batch.num_rows)
            self.rows += batch.num_rows

    def close(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._tmp.unlink(missing_ok=True)


def strict_json(obj) -> object:
    """``obj`` with every non-finite float (NaN, inf) replaced by None, numpy scalars and
    arrays as Python values: what strict JSON (RFC 8259) can hold."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def dumps_strict(obj, **kw) -> str:
    """``json.dumps`` of :func:`strict_json` ``(obj)``; NaN/inf become ``null``."""
    return json.dumps(strict_json(obj), allow_nan=False, default=_json_default, **kw)


def write_json_atomic(path, obj) -> None:
    """Write strict JSON (non-finite numbers as ``null``) to ``path`` through a temporary file."""
    text = dumps_strict(obj, indent=2) + "\n"
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
