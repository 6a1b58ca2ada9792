"""Run a sweep's runs: in this process (``serial``), on a Dask LocalCluster, or on a remote
Dask scheduler. Each run is one task; the same code runs it everywhere.

A run writes its folder ``runs/<run id>/`` through :func:`meshnet.runner.run_scenario` (the
folder appears whole or not at all), then ``done.json`` (written atomically, last): a run is
complete exactly when ``done.json`` is there and names the run's hash. A failing run leaves
``error.json`` instead and is run again by the next ``meshnet sweep``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..errors import MeshnetError

#: The completion marker of a run folder, written last.
DONE = "done.json"
#: What a failed run leaves in its folder (the next sweep removes it and runs again).
ERROR = "error.json"
#: Seconds to wait for a remote Dask scheduler to answer.
DASK_CONNECT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class RunTask:
    """What a worker gets: the run's scenario and where to write (a path all workers see)."""

    run_id: str
    run_hash: str
    scenario: object
    run_dir: str
    datasets: bool = True
    plots: bool = False


def completed(run_dir, run_hash: str) -> dict | None:
    """The ``done.json`` record of a run folder if the run finished with hash ``run_hash``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> completed(pathlib.Path(tempfile.mkdtemp()) / "nothing", "abc") is None
    True
    """
    run_dir = Path(run_dir)
    try:
        rec = json.loads((run_dir / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("run_hash") != run_hash or rec.get("status") != "ok":
        return None
    if not (run_dir / "summary.json").is_file():
        return None
    return rec


def read_summary(run_dir) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text(encoding="utf-8"))


def execute_run(task: RunTask) -> dict:
    """Run one sweep run into ``task.run_dir``; return its record (never raises for a failed
    run: the error is the record's ``error``).

    A folder there without a matching ``done.json`` (a killed or failed earlier attempt, or a
    run of another definition) is removed first.
    """
    from ..io.datasets import write_json_atomic
    from ..runner import run_scenario

    run_dir = Path(task.run_dir)
    wall0 = time.perf_counter()
    rec = {"run_id": task.run_id, "run_hash": task.run_hash}
    try:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        sc = task.scenario
        run_scenario(sc, sc.grid(), run_dir, plots=task.plots, progress=False)
        if not task.datasets:
            for p in run_dir.glob("*.parquet"):
                p.unlink()
        summary = read_summary(run_dir)
        rec.update(status="ok", error=None, wall_s=time.perf_counter() - wall0)
        write_json_atomic(run_dir / DONE, rec)  # last: the run is complete from here on
        rec["summary"] = summary
        return rec
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the sweep
        rec.update(status="failed", error=error_text(exc), wall_s=time.perf_counter() - wall0)
        record_failure(run_dir, rec, traceback.format_exc())
        return rec


def error_text(exc: BaseException) -> str:
    """One line: the exception's type (unless a meshnet error) and its first line."""
    first = (str(exc).strip().splitlines() or [""])[0][:500]
    if isinstance(exc, MeshnetError):
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def record_failure(run_dir: Path, rec: dict, trace: str = "") -> None:
    """Leave ``error.json`` (the record and traceback) in the run's folder, best effort."""
    from ..io.datasets import write_json_atomic

    try:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        write_json_atomic(run_dir / ERROR, {**rec, "traceback": trace})
    except OSError:
        pass


def _task_key(task: RunTask) -> str:
    import hashlib

    where = hashlib.sha256(task.run_dir.encode()).hexdigest()[:12]
    return f"meshnet-sweep-{task.run_hash[:16]}-{where}"


def run_serial(tasks):
    """Yield the record of each task, run one after another in this process."""
    for task in tasks:
        yield execute_run(task)


def check_dask() -> None:
    """Raise a one-line :class:`MeshnetError` if Dask's distributed scheduler is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise MeshnetError("meshnet sweep runs on Dask by default: pip install "
                           "'meshnet[dask]', or pass --serial") from None


def run_dask(tasks, address: str | None = None, workers: int | None = None,
             processes: bool = True):
    """Yield the record of each task as it finishes on a Dask cluster.

    Parameters
    ----------
    address : str, optional
        A scheduler (``tcp://host:8786``); None starts a :class:`distributed.LocalCluster`
        of ``workers`` single-threaded worker processes (default: one per core) and stops it
        at the end. Workers must see the sweep's output folder at the same path.
    processes : bool
        LocalCluster workers as processes (default) or threads of this process (then more
        than one worker needs a thread-safe Numba threading layer, omp or tbb).
    """
    check_dask()
    from distributed import Client, LocalCluster, as_completed

    tasks = list(tasks)
    if not tasks:
        return
    cluster = None
    if address is None:
        import logging

        cores = os.cpu_count() or 1
        n = min(workers or cores, len(tasks))
        kw = {}
        if processes:
            # The cores shared out: each worker's Numba kernels get cores / workers threads,
            # not all of them (n workers x all cores oversubscribes the machine).
            kw["env"] = {"NUMBA_NUM_THREADS": str(max(1, cores // n))}
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                               dashboard_address=None, silence_logs=logging.ERROR, **kw)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=DASK_CONNECT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the address
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise MeshnetError(f"--dask {address!r}: no Dask scheduler answered ({first}); "
                               "give tcp://HOST:PORT of a running scheduler") from None
    try:
        # One key per (run, folder): two sweeps writing elsewhere never share a result.
        futures = {client.submit(execute_run, t, key=_task_key(t), retries=0): t
                   for t in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker fails this run only
                rec = {"run_id": task.run_id, "run_hash": task.run_hash, "status": "failed",
                       "error": error_text(exc), "wall_s": None}
                record_failure(Path(task.run_dir), rec, traceback.format_exc())
                yield rec
    finally:
        try:
            client.close(timeout=10)
        except Exception:  # noqa: BLE001 - teardown must not mask the sweep's own error
            pass
        if cluster is not None:
            cluster.close()
