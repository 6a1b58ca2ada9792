"""Split a run along the time axis: windows of steps computed on workers, in order.

Every window is computed by a fresh link model that starts ``warm-up`` steps before the
window and discards them, so that acquisition timers and terminal occupancy are in the right
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
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .errors import MeshnetError
from .units import NS_PER_S

#: Extra warm-up for ``dynamic`` assignment, whose state depends on the whole history.
DYNAMIC_WARMUP_S = 300.0

#: Extra warm-up for the ground antennas (elevation rule), whose holdings depend on history.
GSL_WARMUP_S = 600.0


def window_bounds(n_steps: int, n_windows: int) -> list[tuple[int, int]]:
    """Split ``range(n_steps)`` into ``n_windows`` contiguous, nearly equal windows."""
    n_windows = max(1, min(int(n_windows), n_steps))
    edges = np.linspace(0, n_steps, n_windows + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


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


def _window_tables(scenario, grid, start: int, stop: int, warm: int):
    """Worker: link tables of steps ``start:stop`` of ``grid`` (a list of (t_ns, table))."""
    from .links.model import link_model, model_tables
    from .timegrid import TimeGrid
    from .world import build_world

    world = build_world(scenario)
    step_ns = grid.step_ns if len(grid) > 1 else int(scenario.run.step_s * NS_PER_S)
    first = int(grid.t_ns[start]) - warm * step_ns
    t_ns = np.concatenate([first + step_ns * np.arange(warm, dtype=np.int64),
                           grid.t_ns[start:stop]])
    # Warm-up steps before the epoch are fine: SGP4 propagates backwards as well.
    sub = TimeGrid(grid.epoch, t_ns)
    model = link_model(scenario, sub, world)
    out = []
    for k, (t, table) in enumerate(model_tables(model, world.constellation, sub)):
        if k >= warm:
            out.append((t, table))
    return out


def windowed_link_tables(scenario, grid, executor, n_windows: int, progress=False):
    """Yield ``(t_ns, LinkTable)`` for every step of ``grid``, computed window by window.

    At most ``2 x workers`` windows are in flight, so memory stays bounded by a few windows.
    """
    step_s = grid.step_ns / NS_PER_S if len(grid) > 1 else scenario.run.step_s
    warm = 0 if n_windows <= 1 else warmup_steps(scenario, step_s)
    bounds = window_bounds(len(grid), n_windows)
    pending: deque = deque()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(grid), unit="steps", dynamic_ncols=True, leave=False)
    in_flight = max(2, 2 * getattr(executor, "_max_workers", 2))
    it = iter(bounds)
    try:
        for a, b in it:
            pending.append(executor.submit(_window_tables, scenario, grid, a, b,
                                           warm if a > 0 else 0))
            if len(pending) >= in_flight:
                break
        while pending:
            tables = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(executor.submit(_window_tables, scenario, grid, nxt[0], nxt[1],
                                               warm))
            for item in tables:
                yield item
                if bar is not None:
                    bar.update(1)
    finally:
        for f in pending:
            f.cancel()
        if bar is not None:
            bar.close()


def make_executor(workers: int | None = None, dask_address: str | None = None):
    """A process pool of ``workers``, or the executor of a Dask cluster at ``dask_address``.

    ``dask_address = "local"`` starts a local Dask cluster (for trying the Dask path).
    """
    if dask_address:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise MeshnetError(
                "--dask needs Dask's distributed scheduler: pip install 'meshnet[dask]'"
            ) from None
        if dask_address == "local":
            client = Client(LocalCluster(n_workers=workers or 2, threads_per_worker=1,
                                         processes=True, dashboard_address=None))
        else:
            try:
                client = Client(dask_address, timeout=10)
            except OSError as exc:
                raise MeshnetError(f"--dask {dask_address}: cannot reach the scheduler "
                                   f"({exc})") from None
        ex = client.get_executor()
        ex._max_workers = max(1, len(client.scheduler_info().get("workers", {})))
        return ex
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers)
