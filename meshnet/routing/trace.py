"""One pair's path over time (the ``meshnet paths`` command), and node-name resolution."""

from __future__ import annotations

import dataclasses
import difflib
import math
import unicodedata
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import NodeNameError
from ..units import NS_PER_S
from .config import RoutingConfig
from .policies import Predictive, RoutingPolicy, make_policy


def _fold(text: str) -> str:
    """Case-, accent- and separator-insensitive form: 'São-Paulo' -> 'sao paulo'."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c))
    for sep in "-_":
        text = text.replace(sep, " ")
    return " ".join(text.casefold().split())


def resolve_node(name, node_names, n_sats: int) -> int:
    """Node id of ``name``: a ground-station name, a satellite name or a numeric id.

    Ground-station names match case-insensitively (accents, ``-``, ``_`` and spaces are
    ignored) and a unique prefix is enough; satellite names must match in full (any case).

    Raises
    ------
    NodeNameError
        No node or several match; the one-line message lists close matches.

    Examples
    --------
    >>> names = ["Kuiper-630 0", "Kuiper-630 1", "Tokyo", "São-Paulo", "Toronto"]
    >>> resolve_node("sao paulo", names, 2), resolve_node("tok", names, 2)
    (3, 2)
    >>> resolve_node("kuiper-630 1", names, 2), resolve_node("4", names, 2)
    (1, 4)
    >>> resolve_node("to", names, 2)
    Traceback (most recent call last):
    ...
    meshnet.errors.NodeNameError: 'to' matches several ground stations: Tokyo, Toronto
    """
    names = [str(x) for x in node_names]
    n = len(names)
    text = str(name).strip()
    if isinstance(name, int | np.integer) or text.isdigit():
        k = int(text)
        if 0 <= k < n:
            return k
        raise NodeNameError(f"node id {k} is out of range (0..{n - 1})")
    key = _fold(text)
    if not key:
        raise NodeNameError("empty node name")
    ground = [(i, _fold(names[i])) for i in range(n_sats, n)]
    exact = [i for i, f in ground if f == key]
    if len(exact) == 1:
        return exact[0]
    sats = [i for i in range(min(n_sats, n)) if _fold(names[i]) == key]
    if len(exact) + len(sats) == 1:
        return (exact + sats)[0]
    if len(exact) + len(sats) > 1:
        listed = ", ".join(f"{names[i]} ({i})" for i in (exact + sats)[:8])
        raise NodeNameError(f"'{text}' names several nodes: {listed}; use a node id")
    prefix = [i for i, f in ground if f.startswith(key)]
    if len(prefix) == 1:
        return prefix[0]
    if len(prefix) > 1:
        shown = ", ".join(names[i] for i in prefix[:8])
        more = f" and {len(prefix) - 8} more" if len(prefix) > 8 else ""
        raise NodeNameError(f"'{text}' matches several ground stations: {shown}{more}")
    folded = {}
    for i in list(range(n_sats, n)) + list(range(min(n_sats, n))):
        folded.setdefault(_fold(names[i]), i)
    close = difflib.get_close_matches(key, list(folded), n=5, cutoff=0.6)
    hint = ("; close matches: " + ", ".join(names[folded[c]] for c in close)) if close else (
        "; give a ground-station name, a satellite name or a node id")
    raise NodeNameError(f"no node named '{text}'{hint}")


@dataclass(frozen=True)
class PathTraceSummary:
    """Summary of a :class:`PathTrace`."""

    n_steps: int
    min_rtt_ms: float
    max_rtt_ms: float
    mean_rtt_ms: float
    path_changes: int
    unreachable_steps: int
    unreachable_s: float
    #: Great-circle RTT bound (min over the steps; constant for two ground stations).
    min_bound_rtt_ms: float = math.nan
    mean_stretch: float = math.nan
    max_stretch: float = math.nan
    #: Steps whose RTT exceeds ``STRETCH_FLAG`` x the bound.
    flagged_steps: int = 0

    def __str__(self) -> str:
        if self.n_steps == self.unreachable_steps:
            rtt = "RTT: never reachable"
        else:
            rtt = (f"RTT min {self.min_rtt_ms:.3f} ms, max {self.max_rtt_ms:.3f} ms, "
                   f"mean {self.mean_rtt_ms:.3f} ms")
        text = (f"{rtt}; path changes: {self.path_changes}; unreachable "
                f"{self.unreachable_s:g} s ({self.unreachable_steps} of {self.n_steps} steps)")
        if math.isfinite(self.mean_stretch):
            from ..latency import STRETCH_FLAG

            text += (f"\ngreat-circle bound {self.min_bound_rtt_ms:.3f} ms RTT; stretch mean "
                     f"{self.mean_stretch:.2f}x, max {self.max_stretch:.2f}x")
            if self.flagged_steps:
                text += (f"; FLAGGED: {self.flagged_steps} of {self.n_steps} steps above "
                         f"{STRETCH_FLAG:g}x the bound")
        return text


@dataclass(frozen=True)
class PathTrace:
    """Per step: ``t_s``, ``rtt_ms``, ``one_way_ms``, ``hops`` and ``path`` of one pair.

    ``path`` is the node ids joined by ``-`` or ``unreachable``; then ``rtt_ms``/``one_way_ms``
    are NaN and ``hops`` is -1. For multi-path policies the path carrying the largest share
    of the pair's traffic is reported. With a latency bound (:meth:`with_bound`, see
    :mod:`meshnet.latency`) the table adds ``bound_rtt_ms``, ``stretch`` (RTT / bound) and
    ``flagged`` (stretch above :data:`~meshnet.latency.STRETCH_FLAG`).
    """

    src: int
    dst: int
    t_s: np.ndarray
    rtt_ms: np.ndarray
    one_way_ms: np.ndarray
    hops: np.ndarray
    path: np.ndarray
    step_s: np.ndarray
    bound_rtt_ms: np.ndarray | None = None

    def with_bound(self, bound_rtt_ms) -> PathTrace:
        """This trace with the great-circle RTT bound of every step attached."""
        bound = np.asarray(bound_rtt_ms, dtype=np.float64).reshape(-1)
        if bound.shape != self.t_s.shape:
            raise ValueError(f"expected {self.t_s.shape[0]} bounds, got {bound.shape[0]}")
        return dataclasses.replace(self, bound_rtt_ms=bound)

    @property
    def stretch(self) -> np.ndarray | None:
        """RTT over the great-circle bound per step (NaN where unreachable)."""
        if self.bound_rtt_ms is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.rtt_ms / self.bound_rtt_ms

    def columns(self) -> dict[str, np.ndarray]:
        """The table as columns, ready for CSV or Parquet."""
        cols = {"t_s": self.t_s, "rtt_ms": self.rtt_ms, "one_way_ms": self.one_way_ms,
                "hops": self.hops, "path": self.path}
        if self.bound_rtt_ms is not None:
            from ..latency import STRETCH_FLAG

            stretch = self.stretch
            cols.update(bound_rtt_ms=self.bound_rtt_ms, stretch=stretch,
                        flagged=np.nan_to_num(stretch, nan=0.0) > STRETCH_FLAG)
        return cols

    def summary(self) -> PathTraceSummary:
        ok = self.hops >= 0
        rtt = self.rtt_ms[ok]
        changes = int(np.count_nonzero(self.path[1:] != self.path[:-1])) if len(self.path) else 0
        extra = {}
        if self.bound_rtt_ms is not None and self.bound_rtt_ms.size:
            from ..latency import STRETCH_FLAG

            st = self.stretch[ok]
            extra = {"min_bound_rtt_ms": float(np.nanmin(self.bound_rtt_ms))}
            if st.size:
                extra.update(mean_stretch=float(st.mean()), max_stretch=float(st.max()),
                             flagged_steps=int(np.count_nonzero(st > STRETCH_FLAG)))
        return PathTraceSummary(
            n_steps=int(self.t_s.shape[0]),
            min_rtt_ms=float(rtt.min()) if rtt.size else math.nan,
            max_rtt_ms=float(rtt.max()) if rtt.size else math.nan,
            mean_rtt_ms=float(rtt.mean()) if rtt.size else math.nan,
            path_changes=changes,
            unreachable_steps=int(np.count_nonzero(~ok)),
            unreachable_s=float(self.step_s[~ok].sum()),
            **extra,
        )


def trace_paths(snapshots: Iterable, src: int, dst: int, policy=None, *,
                lookahead: int | None = None, progress=None) -> PathTrace:
    """Follow the path from ``src`` to ``dst`` through a sequence of snapshots.

    Parameters
    ----------
    snapshots : iterable of Snapshot
        In time order (a generator is fine: at most ``lookahead + 1`` are held).
    src, dst : int
        Node ids (see :func:`resolve_node` for names).
    policy : RoutingPolicy, RoutingConfig or None
        The routing policy (default ``shortest_delay``, ground stations not relaying).
    lookahead : int, optional
        Future snapshots passed to the policy; default ``ceil(horizon_s / step)`` for
        ``predictive`` and 0 otherwise.
    progress : callable, optional
        ``progress(k)`` after each step.

    Examples
    --------
    >>> import numpy as np
    >>> from meshnet.graph import Snapshot
    >>> names = np.array(["s0", "s1", "A", "B"], dtype=object)
    >>> kind = np.array([0, 0, 1, 1], np.int8)
    >>> snaps = [Snapshot.from_links(k * 10**9, names, kind, [2, 0, 1], [0, 1, 3],
    ...                              [600.0, 3000.0 + k, 600.0], [1e9] * 3) for k in range(3)]
    >>> tr = trace_paths(snaps, 2, 3)
    >>> tr.path.tolist(), round(float(tr.rtt_ms[0]), 3)
    (['2-0-1-3', '2-0-1-3', '2-0-1-3'], 28.019)
    >>> s = tr.summary()
    >>> round(s.max_rtt_ms - s.min_rtt_ms, 4), s.path_changes, s.unreachable_s
    (0.0133, 0, 0.0)
    """
    if policy is None:
        policy = RoutingConfig()
    if isinstance(policy, RoutingConfig):
        policy = make_policy(policy)
    if not isinstance(policy, RoutingPolicy):
        raise TypeError("policy must be a RoutingPolicy or a RoutingConfig")
    src_a = np.array([src], np.int32)
    dst_a = np.array([dst], np.int32)
    it = iter(snapshots)
    window: deque = deque()
    t_list, one_way, hops, paths = [], [], [], []
    need = lookahead

    def fill(k):
        while len(window) < k:
            try:
                window.append(next(it))
            except StopIteration:
                return

    fill(2)
    if need is None:
        need = 0
        if isinstance(policy, Predictive) and len(window) == 2:
            step_ns = window[1].t_ns - window[0].t_ns
            if step_ns > 0:
                need = int(math.ceil(policy.cfg.horizon_s * NS_PER_S / step_ns - 1e-9))
    k = 0
    while True:
        fill(need + 1)
        if not window:
            break
        snap = window.popleft()
        future = list(window)[:need] if need else None
        routes = policy.route(snap, src_a, dst_a, t_ns=snap.t_ns, future=future)
        t_list.append(snap.t_ns)
        path = routes.primary_path(0)
        if path is None:
            one_way.append(math.nan)
            hops.append(-1)
            paths.append("unreachable")
        else:
            a = routes.pair_path_indptr[0] + int(np.argmax(
                routes.path_fraction[routes.pair_path_indptr[0]:routes.pair_path_indptr[1]]))
            one_way.append(float(routes.path_delay_s[a]) * 1e3)
            hops.append(len(path) - 1)
            paths.append("-".join(str(x) for x in path.tolist()))
        k += 1
        if progress is not None:
            progress(k)
    t_ns = np.asarray(t_list, np.int64)
    step = np.diff(t_ns)
    step_s = np.append(step, step[-1] if step.size else 0) / NS_PER_S
    one_way_ms = np.asarray(one_way, np.float64)
    return PathTrace(src=int(src), dst=int(dst), t_s=t_ns / NS_PER_S, rtt_ms=2.0 * one_way_ms,
                     one_way_ms=one_way_ms, hops=np.asarray(hops, np.int64),
                     path=np.asarray(paths, dtype=object), step_s=step_s)
