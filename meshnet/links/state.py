"""Link state over time: acquisition before a link is up, and release when it breaks.

A link that is newly assigned or newly feasible at ``t0`` is ``ACQUIRING`` while
``t - t0 < acquisition_s`` and ``UP`` from ``t0 + acquisition_s`` on (with a coarse time step
the wait is rounded up to whole steps). A link that becomes infeasible is ``DOWN`` at once and
frees the terminals at both ends.

Warm start (default): a run begins with the mesh already in place, so links that are
feasible at the first step start ``UP``; only links that appear later acquire. With
``warm_start = false`` every link acquires from the first step (a cold power-on).
"""

from __future__ import annotations

import numpy as np

from ..errors import MeshnetError
from ..timegrid import seconds_to_ns
from .reasons import ACQUIRING, DOWN, UP

#: ``since_ns`` of a link that is not assigned or not feasible.
NOT_SINCE = np.iinfo(np.int64).min


def link_state(t_ns: int, since_ns, acquisition_ns: int) -> np.ndarray:
    """State of links acquiring since ``since_ns`` (:data:`NOT_SINCE`: down).

    ``since_ns`` may be negative: a warm start dates the initial links back by the
    acquisition time.

    Examples
    --------
    >>> link_state(30_000_000_000, np.array([NOT_SINCE, 0, 1]), 30_000_000_000).tolist()
    [0, 2, 1]
    """
    since = np.asarray(since_ns, dtype=np.int64)
    down = since == NOT_SINCE
    state = np.where(t_ns - np.where(down, 0, since) >= acquisition_ns, UP,
                     ACQUIRING).astype(np.int8)
    state[down] = DOWN
    return state


class LinkStates:
    """State machine for a fixed list of candidate links.

    Parameters
    ----------
    n_links : int
    acquisition_s : float
    warm_start : bool
        Links feasible at the first update start ``UP``.

    Examples
    --------
    >>> s = LinkStates(2, acquisition_s=2.0, warm_start=True)
    >>> s.update(0, np.array([True, False])).tolist()
    [2, 0]
    >>> s.update(1_000_000_000, np.array([True, True])).tolist()
    [2, 1]
    >>> s.update(3_000_000_000, np.array([True, True])).tolist()
    [2, 2]
    """

    def __init__(self, n_links: int, acquisition_s: float, warm_start: bool = True):
        self.acquisition_ns = seconds_to_ns(acquisition_s)
        self.warm_start = bool(warm_start)
        self.since_ns = np.full(int(n_links), NOT_SINCE, dtype=np.int64)
        self.t_last_ns: int | None = None

    def update(self, t_ns: int, feasible) -> np.ndarray:
        """Advance to ``t_ns`` given which links are feasible; returns the int8 states."""
        t_ns = int(t_ns)
        feasible = np.asarray(feasible, dtype=bool)
        if feasible.shape != self.since_ns.shape:
            raise MeshnetError(f"expected {self.since_ns.shape[0]} feasibility flags, got "
                               f"{feasible.shape}")
        first = self.t_last_ns is None
        if not first and t_ns <= self.t_last_ns:
            raise MeshnetError(f"link states must advance in time: {t_ns} ns after "
                               f"{self.t_last_ns} ns")
        new = feasible & (self.since_ns == NOT_SINCE)
        self.since_ns[new] = t_ns - self.acquisition_ns if (first and self.warm_start) else t_ns
        self.since_ns[~feasible] = NOT_SINCE
        self.t_last_ns = t_ns
        return link_state(t_ns, self.since_ns, self.acquisition_ns)
