"""Split a run along the time axis: windows of steps computed on workers, in order.

Every window is computed by a fresh link model that starts ``warm-up`` steps before the
window and discards them. Windows and warm-ups start on the propagation chunks of the
single-process run (:func:`meshnet.links.model.model_tables`), so every step is propagated
from the same sub-grid (same interpolation knots, same engine) and its floats are bit for bit
the single-process ones; the link model is built on the whole run's grid, so fault schedules
are the run's, so that acquisition timers and terminal occupancy are in the right
state when the window begins. For topologies whose links follow from geometry alone
(``plus_grid``, ``static``, ``cluster``) a warm-up longer than ``acquisition_s`` gives exactly
the single-process result (tested). ``dynamic`` assignment depends on the whole history;
after a warm-up of a few minutes (``DYNAMIC_WARMUP_S``) its statistics match, link by link
they may differ. Ground antennas (the elevation rule) also hold state: a window adds
``GSL_WARMUP_S`` of warm-up, after which the held satellites are the single-process ones
(measured: starlink_550 from 2 minutes on; on starlink_gen1 a few of 100 stations may still
hold a different satellite after 10 minutes, so there the ground rows match statistically).

Workers compute (propagation and the link model, the expensive part); the caller writes, so
datasets keep their fixed row order and summaries are exact. Any executor with
``submit(fn, *args)`` works: :class:`concurrent.futures.ProcessPoolExecutor` on one machine, or
a Dask cluster through ``distributed.Client(address).get_executor()``.

Examples
--------
>>> window_bounds(10, 3)
[(0, 3), (3, 7), (7, 10)]
>>> window_plan(1000, 100, 4, 150)
[(0, 0, 200), (0, 200, 500), (300, 500, 800), (600, 800, 1000)]
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import shutil
import signal
import sys
import tempfile
from collections import deque
from pathlib import Path

import numpy as np

from .errors import MeshnetError
from .units import NS_PER_S

#: Extra warm-up for ``dynamic`` assignment, whose state depends on the whole history.
DYNAMIC_WARMUP_S = 300.0

#: Extra warm-up for the ground antennas (elevation rule), whose holdings depend on history.
GSL_WARMUP_S = 600.0

#: Seconds ``--dask ADDRESS`` waits for the scheduler before giving up.
DASK_CONNECT_TIMEOUT_S = 10.0


def window_bounds(n_steps: int, n_windows: int) -> list[tuple[int, int]]:
    """Split ``range(n_steps)`` into ``n_windows`` contiguous, nearly equal windows."""
    n_windows = max(1, min(int(n_windows), n_steps))
    edges = np.linspace(0, n_steps, n_windows + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def window_plan(n_steps: int, chunk: int, n_windows: int,
                warm: int) -> list[tuple[int, int, int]]:
    """Windows ``(w0, a, b)`` on the propagation chunks of the single-process run.

    Steps ``a:b`` are reported; the model starts at ``w0 <= a`` (at least ``warm`` steps
    earlier, or the run's start), and ``w0``, ``a`` and ``b`` (unless it is ``n_steps``) are
    multiples of ``chunk``, so every step is propagated from the single-process sub-grid.
    """
    chunk = max(1, int(chunk))
    n_chunks = -(-n_steps // chunk)
    warm_chunks = -(-max(0, int(warm)) // chunk)
    plan = []
    for ca, cb in window_bounds(n_chunks, n_windows):
        plan.append((max(0, ca - warm_chunks) * chunk, ca * chunk, min(cb * chunk, n_steps)))
    return plan


def default_windows(n_steps: int, chunk: int, warm: int, workers: int) -> int:
    """Windows of at least four warm-ups (so warm-up costs at most a quarter), >= ``workers``."""
    length = max(chunk, 4 * warm)
    n_chunks = -(-n_steps // max(1, chunk))
    return max(1, min(n_chunks, max(int(workers), -(-n_steps // length))))


def warmup_steps(scenario, step_s: float) -> int:
    """Steps a window's link model runs before the window so that its state is right."""
    warm_s = scenario.links.acquisition_s + 2.0 * step_s
    if scenario.links.topology == "dynamic":
        warm_s += DYNAMIC_WARMUP_S
    ground = getattr(scenario, "ground", None)
    if (ground is not None and ground.stations != "none"
            and ground.max_gsl_length_km is None):
        warm_s += GSL_WARMUP_S
    return int(math.ceil(warm_s / step_s))


def _window_tables(scenario, grid, w0: int, a: int, b: int, chunk: int,
                   spool_dir: str | None = None):
    """Worker: link tables of steps ``a:b`` of ``grid``, the model started at step ``w0``.

    Returns a list of ``(t_ns, table)``, or with ``spool_dir`` the path of a file of pickled
    ``(t_ns, table)`` records (so a window never sits whole in memory).
    """
    from .links.model import link_model, model_tables
    from .world import build_world

    world = build_world(scenario)
    # The whole run's grid: fault schedules and the step length are the single-process ones.
    model = link_model(scenario, grid, world)
    if w0 > 0:
        _prime_fixed_topology(model, world.constellation, grid, chunk)
    tables = model_tables(model, world.constellation, grid[w0:b], chunk_steps=chunk)
    skip = a - w0
    if spool_dir is None:
        return [item for k, item in enumerate(tables) if k >= skip]
    fd, path = tempfile.mkstemp(prefix=f"window-{a:09d}-", suffix=".pkl", dir=spool_dir)
    with os.fdopen(fd, "wb") as fh:
        for k, item in enumerate(tables):
            if k >= skip:
                pickle.dump(item, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _window_part(scenario, grid, w0: int, a: int, b: int, chunk: int, fmt: str,
                 created: str, spool_dir: str | None = None):
    """Worker: write steps ``a:b`` of the links dataset as a part file, and their statistics.

    The model starts at step ``w0`` (warm-up steps are computed, not written; the last one
    primes the statistics). Returns ``(part, LinkAccumulator)``: the part is the path of a
    file in ``spool_dir``, or without ``spool_dir`` (a remote worker) the file's bytes. The
    part has the run's schema, metadata and dictionaries, so parts concatenate row group by
    row group (:class:`meshnet.io.rowgroups.ParquetConcat`); a CSV part has a header only
    if it is the first.
    """
    from .io.links_dataset import (
        LinkAccumulator,
        LinkRowsWriter,
        grid_epoch_ns,
        link_dictionaries,
        links_schema,
        run_metadata,
        run_step_s,
    )
    from .links.model import link_model, model_tables
    from .world import build_world

    world = build_world(scenario)
    model = link_model(scenario, grid, world)
    if w0 > 0:
        _prime_fixed_topology(model, world.constellation, grid, chunk)
    acc = LinkAccumulator(model.n_sats, model.n_ground, model.n_terminals,
                          run_step_s(scenario, grid))
    schema = links_schema().with_metadata(run_metadata(scenario, grid, model, created))
    fd, path = tempfile.mkstemp(prefix=f"part-{a:09d}-", suffix=f".{fmt}", dir=spool_dir)
    os.close(fd)
    writer = LinkRowsWriter(Path(path), fmt, schema, link_dictionaries(model.node_names),
                            grid_epoch_ns(grid), header=a == 0, temporary=False)
    skip = a - w0
    try:
        for k, (t_ns, table) in enumerate(model_tables(model, world.constellation, grid[w0:b],
                                                       chunk_steps=chunk)):
            if k >= skip:
                acc.add(table)
                writer.append(t_ns, table)
            elif k == skip - 1:
                acc.prime(table)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    if spool_dir is None:
        try:
            return Path(path).read_bytes(), acc
        finally:
            Path(path).unlink(missing_ok=True)
    return path, acc


def balanced_window_plan(n_steps: int, chunk: int, n_windows: int,
                         warm: int) -> list[tuple[int, int, int]]:
    """Like :func:`window_plan`, with windows of equal cost (steps computed, warm-up included).

    Every window but the first also computes its warm-up, so equal windows leave the first
    worker idle at the end; here the first window is longer by about a warm-up. Windows
    shorter than their warm-up would not pay, so there are fewer windows then.

    Examples
    --------
    >>> balanced_window_plan(1000, 100, 2, 150)
    [(0, 0, 600), (400, 600, 1000)]
    """
    chunk = max(1, int(chunk))
    n_chunks = -(-n_steps // chunk)
    warm_chunks = -(-max(0, int(warm)) // chunk)
    w = max(1, min(int(n_windows), n_chunks))
    while w > 1 and (n_chunks + (w - 1) * warm_chunks) / w <= warm_chunks:
        w -= 1
    cost = (n_chunks + (w - 1) * warm_chunks) / w
    edges = [0] + [int(math.floor(i * cost - (i - 1) * warm_chunks + 0.5))
                   for i in range(1, w)] + [n_chunks]
    plan = []
    for ca, cb in zip(edges[:-1], edges[1:], strict=True):
        if cb > ca:
            plan.append((max(0, ca - warm_chunks) * chunk, ca * chunk, min(cb * chunk, n_steps)))
    return plan


#: Rows a window returned in memory (a Dask worker's part) holds at most, roughly.
MAX_ROWS_IN_MEMORY = 1 << 24


def window_parts(scenario, grid, executor, n_windows: int | None = None, progress=False, *,
                 workers: int | None = None, chunk_steps: int | None = None,
                 spool: bool = False, world=None, fmt: str = "parquet",
                 created: str | None = None):
    """Yield ``(part, LinkAccumulator)`` for consecutive windows of ``grid``, in order.

    Workers compute, accumulate and encode their window (:func:`_window_part`); the caller
    only concatenates the parts (:func:`meshnet.io.links_dataset.write_links_dataset` with
    ``parts=``). Parameters as :func:`windowed_link_tables`, and:

    n_windows : int, optional
        Default: one window per worker (a window's part goes to disk, not memory), or
        without ``spool`` a multiple of the workers that keeps a part under
        :data:`MAX_ROWS_IN_MEMORY` rows.
        Windows are balanced (:func:`balanced_window_plan`).
    fmt : {"parquet", "csv"}
    created : str
        The run's creation time, written into every part's metadata.
    """
    from .links.model import _chunk_steps

    if world is None:
        from .world import build_world

        world = build_world(scenario)
    if chunk_steps is None:
        chunk_steps = _chunk_steps(len(world.constellation.names))
    step_s = grid.step_ns / NS_PER_S if len(grid) > 1 else scenario.run.step_s
    warm = warmup_steps(scenario, step_s)
    workers = int(workers or getattr(executor, "_max_workers", None) or 2)
    if n_windows is None:
        n_windows = workers
        if not spool:
            rows = len(grid) * (2.5 * world.n_sats + 4.0 * world.n_ground)
            rounds = int(math.ceil(rows / MAX_ROWS_IN_MEMORY / workers))
            n_windows = workers * max(1, rounds)  # whole rounds: no worker idles at the end
    plan = balanced_window_plan(len(grid), chunk_steps, n_windows, warm)
    with _bar_and_spool(len(grid), spool, progress) as (bar, spool_dir):
        pending: deque = deque()
        it = iter(plan)

        def submit(window):
            pending.append((window, executor.submit(_window_part, scenario, grid, *window,
                                                    chunk_steps, fmt, created, spool_dir)))

        try:
            for window in it:
                submit(window)
                if len(pending) >= workers + 1:
                    break
            while pending:
                (_, a, b), fut = pending.popleft()
                result = fut.result()
                nxt = next(it, None)
                if nxt is not None:
                    submit(nxt)
                yield result
                if bar is not None:
                    bar.update(b - a)
        finally:
            for _, f in pending:
                f.cancel()


def _prime_fixed_topology(model, constellation, grid, chunk: int) -> None:
    """Give a fixed topology the link list the single-process run picks at the run's first
    step (from the first chunk's propagation, as there), not at the window's first step."""
    from .links.state import LinkStates
    from .links.topology import FixedTopology, _canonical
    from .orbits.propagate import propagate

    base = getattr(model.isl, "base", model.isl)
    if not isinstance(base, FixedTopology) or base.a is not None:
        return
    orb = propagate(constellation, grid[0:chunk])
    r, v = orb.r_km[0].copy(), orb.v_km_s[0].copy()
    bad = orb.status[0] != 0
    r[bad] = np.nan
    v[bad] = np.nan
    base.a, base.b = _canonical(*base.candidates(r, v))
    base.states = LinkStates(base.a.shape[0], base.cfg.acquisition_s, base.cfg.warm_start)


_SPOOL_PREFIX = "meshnet-windows-"


def _remove_stale_spools() -> None:
    """Delete the spool folders of killed runs (their process, named in the folder, is gone)."""
    import shutil

    for path in Path(tempfile.gettempdir()).glob(f"{_SPOOL_PREFIX}*-*"):
        try:
            pid = int(path.name[len(_SPOOL_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def _read_spool(path: str):
    try:
        with open(path, "rb") as fh:
            while True:
                try:
                    yield pickle.load(fh)
                except EOFError:
                    return
    finally:
        Path(path).unlink(missing_ok=True)


def windowed_link_tables(scenario, grid, executor, n_windows: int | None = None,
                         progress=False, *, workers: int | None = None,
                         chunk_steps: int | None = None, spool: bool = False, world=None):
    """Yield ``(t_ns, LinkTable)`` for every step of ``grid``, computed window by window.

    Parameters
    ----------
    scenario, grid
        The run.
    executor
        Anything with ``submit(fn, *args)``.
    n_windows : int, optional
        Windows (clamped to the number of propagation chunks); default
        :func:`default_windows`.
    workers : int, optional
        Workers of ``executor`` (default: its ``_max_workers``, else 2). At most
        ``workers + 1`` windows are in flight.
    chunk_steps : int, optional
        Propagation chunk (default: the single-process one for the constellation).
    spool : bool
        Workers stream their windows to temporary files on this machine (process pools);
        otherwise a window comes back whole in memory (Dask).
    world : World, optional
        Already built satellites (only used for the default chunk).
    """
    from .links.model import _chunk_steps

    if chunk_steps is None:
        if world is None:
            from .world import build_world

            world = build_world(scenario)
        chunk_steps = _chunk_steps(len(world.constellation.names))
    step_s = grid.step_ns / NS_PER_S if len(grid) > 1 else scenario.run.step_s
    warm = warmup_steps(scenario, step_s)
    workers = int(workers or getattr(executor, "_max_workers", None) or 2)
    if n_windows is None:
        n_windows = default_windows(len(grid), chunk_steps, warm, workers)
    plan = window_plan(len(grid), chunk_steps, n_windows, warm)
    yield from _run_plan(scenario, grid, executor, plan, chunk_steps, workers + 1,
                         spool, progress)


def _run_plan(scenario, grid, executor, plan, chunk, in_flight, spool, progress):
    with _bar_and_spool(len(grid), spool, progress) as (bar, spool_dir):
        pending: deque = deque()
        it = iter(plan)

        def submit(window):
            pending.append(executor.submit(_window_tables, scenario, grid, *window, chunk,
                                           spool_dir))

        try:
            for window in it:
                submit(window)
                if len(pending) >= in_flight:
                    break
            while pending:
                result = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    submit(nxt)
                for item in (_read_spool(result) if spool else result):
                    yield item
                    if bar is not None:
                        bar.update(1)
        finally:
            for f in pending:
                f.cancel()



@contextlib.contextmanager
def _bar_and_spool(n_steps: int, spool: bool, progress: bool):
    """A progress bar (or None) and a private spool folder (or None), both gone on exit."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_steps, unit="steps", dynamic_ncols=True, leave=False)
    spool_dir = None
    if spool:
        _remove_stale_spools()
        spool_dir = tempfile.mkdtemp(prefix=f"{_SPOOL_PREFIX}{os.getpid()}-")
    try:
        yield bar, spool_dir
    finally:
        if bar is not None:
            bar.close()
        if spool_dir is not None:
            shutil.rmtree(spool_dir, ignore_errors=True)

def _worker_init(parent_pid: int) -> None:
    """Process-pool initializer: die with the parent, leave Ctrl-C to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class Workers:
    """Context manager: an executor for the windows, torn down on exit (no orphans).

    Parameters
    ----------
    workers : int, optional
        Local worker processes (a :class:`~concurrent.futures.ProcessPoolExecutor` whose
        workers get ``SIGKILL`` when the parent dies, on Linux).
    dask_address : str, optional
        A Dask scheduler's address (``tcp://host:8786``); ``"local"`` starts a local cluster.
    """

    def __init__(self, workers: int | None = None, dask_address: str | None = None):
        self.workers = workers
        self.dask_address = dask_address
        self.executor = None
        self.n_workers = 0
        self.spool = False
        self._client = None
        self._cluster = None

    def __enter__(self):
        if self.dask_address:
            self._client, self._cluster = _dask_client(self.dask_address, self.workers)
            self.executor = self._client.get_executor()
            # A local cluster shares this machine's disk: parts go through files there too.
            self.spool = self.dask_address == "local"
            info = self._client.scheduler_info().get("workers", {})
            self.n_workers = max(1, len(info))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.n_workers = max(1, int(self.workers or 1))
            self.executor = ProcessPoolExecutor(
                max_workers=self.n_workers, mp_context=multiprocessing.get_context("fork")
                if sys.platform.startswith("linux") else None,
                initializer=_worker_init, initargs=(os.getpid(),))
            self.spool = True
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._client is not None:
            try:
                self._client.close(timeout=10)
            except Exception:  # noqa: BLE001 - teardown must not mask the run's own error
                pass
            if self._cluster is not None:
                self._cluster.close()
            return False
        ex = self.executor
        if exc_type is None:
            ex.shutdown(wait=True)
            return False
        # Interrupted or failed: stop the workers now rather than finishing their windows.
        procs = list((getattr(ex, "_processes", None) or {}).values())
        for p in procs:
            try:
                p.kill()
            except (OSError, ValueError):
                pass
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            try:
                p.join(timeout=5)
            except (OSError, ValueError, AssertionError):
                pass
        return False


def _dask_client(address: str, workers: int | None):
    """A connected ``distributed.Client`` (and the local cluster, if ``address`` is 'local')."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MeshnetError(
            "--dask needs Dask's distributed scheduler: pip install 'meshnet[dask]'"
        ) from None
    if address == "local":
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(address, timeout=DASK_CONNECT_TIMEOUT_S), None
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's address
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise MeshnetError(f"--dask {address!r}: no Dask scheduler answered ({first}; waited "
                           f"at most {DASK_CONNECT_TIMEOUT_S:g} s); give tcp://HOST:PORT of "
                           f"a running scheduler") from None


def make_executor(workers: int | None = None, dask_address: str | None = None):
    """An executor for the windows (kept for callers that manage its lifetime themselves)."""
    w = Workers(workers, dask_address).__enter__()
    ex = w.executor
    ex._max_workers = w.n_workers
    return ex
