"""Write forwarding state in Hypatia's file format, so Hypatia's ns-3 simulator runs on it.

Layout (as snkas/hypatia's satgenpy writes it for ``algorithm_free_one_only_over_isls``)::

    <out_dir>/dynamic_state_<step_ms>ms_for_<duration_s>s/
        fstate_<t_ns>.txt            cur,dst,next_hop,cur_if,next_if
        gsl_if_bandwidth_<t_ns>.txt  node,if,bandwidth

``fstate`` holds every (node, destination station) entry at the first step, then only the
entries that changed; rows go satellites first (node-major, destinations inner), then station
pairs (source-major, skipping a station to itself); ``-1,-1,-1`` marks no route. Interfaces are
numbered the Hypatia way (see :mod:`meshnet.routing.hypatia`). ``gsl_if_bandwidth`` lists
``node,gsl_if,aggregate_max_bandwidth`` (``%f``) for every node at ``t = 0`` and is empty at
later steps, as satgenpy leaves it.

The folder is written under a temporary name and renamed into place when complete: a killed
export never leaves a folder that looks finished.

Examples
--------
>>> from meshnet.orbits.hypatia import load_hypatia_dir  # doctest: +SKIP
>>> net = load_hypatia_dir("../shared/data/hypatia_kuiper_630")  # doctest: +SKIP
>>> export_hypatia_state(net, orbits, grid, "out")  # doctest: +SKIP
PosixPath('out/dynamic_state_100ms_for_200s')
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import MeshnetError
from ..routing.hypatia import (
    ForwardingState,
    HypatiaTopology,
    hypatia_forwarding_state,
    hypatia_topology,
)
from ..units import NS_PER_S
from .datasets import AtomicOutput


def _number(x: float) -> str:
    """``100`` for 100.0, ``0.5`` for 0.5: Hypatia names folders with integers."""
    return str(int(round(x))) if abs(x - round(x)) < 1e-9 else f"{x:g}"


def state_dir_name(step_ns: int, duration_ns: int) -> str:
    """``dynamic_state_<step_ms>ms_for_<duration_s>s``.

    Examples
    --------
    >>> state_dir_name(100_000_000, 200_000_000_000)
    'dynamic_state_100ms_for_200s'
    """
    return (f"dynamic_state_{_number(step_ns / 1e6)}ms_for_"
            f"{_number(duration_ns / NS_PER_S)}s")


def _lines(cur, dst, a, b, c) -> str:
    return "".join(f"{u},{d},{x},{y},{z}\n" for u, d, x, y, z in zip(
        cur.tolist(), dst.tolist(), a.tolist(), b.tolist(), c.tolist(), strict=True))


class HypatiaStateWriter(AtomicOutput):
    """Streams forwarding states into a Hypatia ``dynamic_state_*`` folder.

    Parameters
    ----------
    topology : HypatiaTopology
        The network's static part (interface numbers, node counts, GSL bandwidths).
    out_dir : path
        Parent folder; created if missing.
    step_ns, duration_ns : int
        Name the folder (``dynamic_state_<step_ms>ms_for_<duration_s>s``).

    Use as a context manager: the folder appears under its final name only when the block
    ends without an exception.
    """

    def __init__(self, topology: HypatiaTopology, out_dir, step_ns: int, duration_ns: int):
        if step_ns <= 0 or duration_ns <= 0:
            raise MeshnetError("step and duration must be > 0 for a Hypatia export")
        self.topology = topology
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.out_dir / state_dir_name(step_ns, duration_ns)
        self._tmp = self.out_dir / f".{self.path.name}.{os.getpid()}.tmp"
        if self._tmp.exists():
            shutil.rmtree(self._tmp)
        self._tmp.mkdir()
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        n_s, n_g = topology.n_sats, topology.n_ground
        n = n_s + n_g
        # Row-major order of (cur, dst) as satgenpy writes it, without a station to itself.
        cur = np.repeat(np.arange(n), n_g)
        dst_g = np.tile(np.arange(n_g), n)
        keep = ~((cur >= n_s) & (cur - n_s == dst_g))
        self._cur = cur[keep]
        self._dst = dst_g[keep] + n_s
        self._flat = (dst_g[keep] * n + cur[keep])  # index into (n_ground, n_nodes).ravel()
        self.n_steps = 0
        self.n_lines = 0

    def add(self, state: ForwardingState) -> int:
        """Write ``fstate_<t_ns>.txt`` and ``gsl_if_bandwidth_<t_ns>.txt``; returns the number of
        forwarding entries written."""
        t_ns = int(state.t_ns)
        nh = state.next_hop.ravel()[self._flat]
        ci = state.cur_if.ravel()[self._flat]
        ni = state.next_if.ravel()[self._flat]
        if self._prev is None:
            sel = slice(None)
        else:
            pn, pc, pi = self._prev
            sel = np.flatnonzero((nh != pn) | (ci != pc) | (ni != pi))
        text = _lines(self._cur[sel], self._dst[sel], nh[sel], ci[sel], ni[sel])
        (self._tmp / f"fstate_{t_ns}.txt").write_text(text, encoding="ascii")
        self._prev = (nh, ci, ni)
        topo = self.topology
        if t_ns == 0:
            bw = topo.gsl_bandwidth
            n_s = topo.n_sats
            rows = [f"{u},{int(topo.n_isls[u])},{bw[u]:f}\n" for u in range(n_s)]
            rows += [f"{u},0,{bw[u]:f}\n" for u in range(n_s, topo.n_nodes)]
            bw_text = "".join(rows)
        else:
            bw_text = ""
        (self._tmp / f"gsl_if_bandwidth_{t_ns}.txt").write_text(bw_text, encoding="ascii")
        n_written = int(self._cur.shape[0] if isinstance(sel, slice) else sel.shape[0])
        self.n_steps += 1
        self.n_lines += n_written
        return n_written

    def close(self) -> Path:
        """Rename the finished folder into place (replacing an older export) and return it."""
        old = None
        if self.path.exists():
            old = self.out_dir / f".{self.path.name}.{os.getpid()}.old"
            os.replace(self.path, old)
        os.replace(self._tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def _uniform_step_ns(t_ns: np.ndarray) -> int:
    if t_ns.shape[0] < 2:
        raise MeshnetError("a Hypatia export needs at least two time steps (to know the step)")
    steps = np.diff(t_ns)
    if steps.min() != steps.max() or steps[0] <= 0:
        raise MeshnetError("a Hypatia export needs a uniform time grid")
    return int(steps[0])


def export_hypatia_state(network, positions, grid, out_dir, *, duration_s: float | None = None,
                         topology: HypatiaTopology | None = None, progress=None) -> Path:
    """Write Hypatia's ``dynamic_state`` folder for ``network`` over ``grid``.

    Parameters
    ----------
    network : meshnet.orbits.hypatia.HypatiaNetwork
        The imported Hypatia directory.
    positions : Orbits or numpy.ndarray
        Satellite positions ``(T, n_sats, 3)`` km (Earth-fixed) at the times of ``grid``
        (an :class:`~meshnet.orbits.propagate.Orbits` works too).
    grid : TimeGrid
        Uniform times; ``grid.t_ns`` (offsets from the epoch) name the files.
    out_dir : path
        Parent folder of ``dynamic_state_<step_ms>ms_for_<duration_s>s``.
    duration_s : float, optional
        For the folder name; default ``T x step``.
    topology : HypatiaTopology, optional
        Reuse a precomputed :func:`~meshnet.routing.hypatia.hypatia_topology`.
    progress : callable, optional
        Called as ``progress(k, T)`` after each step.

    Returns
    -------
    pathlib.Path
        The finished folder.
    """
    r_km = getattr(positions, "r_km", positions)
    r_km = np.asarray(r_km, dtype=np.float64)
    t_ns = np.asarray(grid.t_ns, dtype=np.int64)
    if r_km.ndim != 3 or r_km.shape[0] != t_ns.shape[0]:
        raise MeshnetError(f"positions must be (T, n_sats, 3) with T = {t_ns.shape[0]} (the "
                           f"grid's steps), got {r_km.shape}")
    step_ns = _uniform_step_ns(t_ns)
    duration_ns = (int(round(duration_s * NS_PER_S)) if duration_s is not None
                   else step_ns * t_ns.shape[0])
    topo = topology or hypatia_topology(network)
    with HypatiaStateWriter(topo, out_dir, step_ns, duration_ns) as writer:
        for k in range(t_ns.shape[0]):
            writer.add(hypatia_forwarding_state(topo, r_km[k], int(t_ns[k])))
            if progress is not None:
                progress(k + 1, t_ns.shape[0])
    return writer.path
