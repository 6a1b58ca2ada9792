"""The routing-policy protocol: what a policy of your own receives and must return.

A policy is a class (or an object) with a ``route(request)`` method. Name it in a scenario::

    [routing]
    policy = "policies/contact_plan.py:ContactPlan"   # or "my_pkg.routing:ContactPlan",
                                                      # or an entry point's name
    on_error = "stop"                                 # or "fallback"
    [routing.params]                                  # passed as keyword arguments
    lookahead_s = 30.0

meshnet builds it once per run as ``ContactPlan(**params)`` and, at every step, calls
``route(request)`` with a :class:`RouteRequest`:

========================  ==================================================================
``snapshot``              :class:`~meshnet.graph.Snapshot` of the links up now: CSR arrays
                          ``indptr``, ``indices`` (directed edges, both directions of each
                          link), per-edge ``delay_s``, ``length_km``, ``capacity_bps``,
                          ``link_id``; per-node ``node_kind`` (0 satellite, 1 ground) and
                          ``node_names``
``src``, ``dst``          ``(P,)`` int32 node ids of the pairs to route
``t_ns``, ``t_s``         time of the step since the scenario epoch
``step``                  0-based index of the call
``edge_utilisation``      ``(E,)`` utilisation (0..1) of each directed edge of *this*
                          snapshot during the previous step, or None at the first step
``future``                tuple of the next snapshots within ``[routing].horizon_s`` (the
                          known future: orbits are predictable), possibly empty
``relay``                 ``(n_nodes,)`` bool: nodes allowed in the middle of a path
``params``                the ``[routing.params]`` table (also given to ``__init__``)
========================  ==================================================================

``route`` returns one entry per pair, in order: ``None`` or ``[]`` (no path: the pair's
traffic waits), a node sequence ``[src, ..., dst]`` (one path, all the traffic), or a list of
``(nodes, share)`` tuples whose shares sum to one. A :class:`~meshnet.routing.Routes` is
accepted too (what built-in policies return).

Every answer is checked before it reaches the allocator: a path must start at the pair's
source, end at its destination, use only links up in ``snapshot``, visit no node twice and
relay only through ``relay`` nodes; shares must be finite, non-negative and sum to one. A
violation, or an exception in ``route``, stops the run with one line naming the policy, the
step, the time and the pair (``on_error = "stop"``), and no output folder is left half
written; with ``on_error = "fallback"`` that step is routed by ``shortest_delay`` instead,
the first problem is printed once, and the run's summary counts ``policy_errors``.

Examples
--------
>>> import numpy as np
>>> from meshnet.graph import Snapshot
>>> snap = Snapshot.from_links(0, np.array(["a", "b", "c"], dtype=object),
...                            np.zeros(3, np.int8), [0, 1], [1, 2], [1000.0, 500.0],
...                            [1e9, 1e9])
>>> class Direct:  # straight to the destination, whether or not that link is up
...     def route(self, request):
...         return [[int(s), int(d)] for s, d in zip(request.src, request.dst)]
>>> policy = ExternalPolicy(Direct(), name="Direct", n_nodes=3)
>>> policy.route(snap, np.array([0]), np.array([1]), t_ns=0).nodes_of(0).tolist()
[0, 1]
>>> try:
...     policy.route(snap, np.array([1, 0]), np.array([2, 2]), t_ns=10**9)
... except PolicyError as exc:
...     print(exc)
routing policy 'Direct' at step 1 (t = 1 s), pair 1 (a -> c): path uses link 0 'a' - 2 'c', \
which is down at this step
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import MeshnetError
from ..graph import Snapshot
from ..kernels import _routing as K
from ..units import NS_PER_S

#: Largest deviation from one accepted for the sum of a pair's shares.
SHARE_TOL = 1e-6


class PolicyError(MeshnetError):
    """A user policy raised or answered something invalid (one line: step, time, pair)."""


@dataclass(frozen=True)
class RouteRequest:
    """Everything a policy gets at one step (see the module docstring for each field)."""

    snapshot: Snapshot
    src: np.ndarray
    dst: np.ndarray
    t_ns: int
    step: int
    relay: np.ndarray
    edge_utilisation: np.ndarray | None = None
    future: tuple = ()
    params: dict = field(default_factory=dict)

    @property
    def t_s(self) -> float:
        return self.t_ns / NS_PER_S

    @property
    def n_pairs(self) -> int:
        return int(self.src.shape[0])


def _name(snapshot, u) -> str:
    return str(snapshot.node_names[int(u)])


class _Bad(Exception):
    """Internal: the first invalid pair of an answer."""

    def __init__(self, pair: int | None, what: str):
        super().__init__(what)
        self.pair = pair
        self.what = what


def routes_from_answer(snapshot: Snapshot, src, dst, answer, relay=None):
    """Check a policy's answer and turn it into :class:`~meshnet.routing.Routes`.

    Raises ``_Bad(pair, message)`` on the first invalid pair (wrapped into
    :class:`PolicyError` by :class:`ExternalPolicy`).
    """
    from .policies import Routes, _routes

    n_pairs = src.shape[0]
    if isinstance(answer, Routes):
        check_routes(snapshot, src, dst, answer, relay)
        return answer
    if isinstance(answer, np.ndarray) and answer.ndim == 2:
        answer = list(answer)
    if not isinstance(answer, Sequence) and not isinstance(answer, np.ndarray):
        raise _Bad(None, f"route() returned {type(answer).__name__}; expected a list with one "
                         "entry per pair, or Routes")
    if len(answer) != n_pairs:
        raise _Bad(None, f"route() returned {len(answer)} entries for {n_pairs} pairs")
    counts = np.zeros(n_pairs, np.int64)
    paths, shares = [], []
    for p, entry in enumerate(answer):
        if entry is None or (hasattr(entry, "__len__") and len(entry) == 0):
            continue
        if _is_node_seq(entry):
            items = [(entry, 1.0)]
        else:
            try:
                items = [(nodes, share) for nodes, share in entry]
            except (TypeError, ValueError):
                raise _Bad(p, "entry is neither a node list nor a list of (nodes, share) "
                              "tuples") from None
        for nodes, share in items:
            if not _is_node_seq(nodes):
                raise _Bad(p, "a path is not a sequence of node ids")
            try:
                paths.append(np.asarray(nodes, np.int64).ravel())
                shares.append(float(share))
            except (TypeError, ValueError):
                raise _Bad(p, f"share {share!r} is not a number") from None
        counts[p] = len(items)
    n_nodes = snapshot.n_nodes
    lens = np.array([q.size for q in paths], np.int64)
    nodes = np.concatenate(paths) if paths else np.zeros(0, np.int64)
    pair_of_path = np.repeat(np.arange(n_pairs), counts)
    if (lens < 2).any():
        j = int(np.flatnonzero(lens < 2)[0])
        raise _Bad(int(pair_of_path[j]), "a path needs at least two nodes")
    if nodes.size and (nodes.min() < 0 or nodes.max() >= n_nodes):
        j = int(np.flatnonzero((nodes < 0) | (nodes >= n_nodes))[0])
        path_of_node = np.repeat(np.arange(lens.size), lens)
        raise _Bad(int(pair_of_path[path_of_node[j]]),
                   f"node id {int(nodes[j])} is not in [0, {n_nodes})")
    node_indptr = _cumsum(lens)
    is_last = np.zeros(nodes.size, bool)
    is_last[node_indptr[1:] - 1] = True
    u = nodes[~is_last]
    v = nodes[1:][~is_last[:-1]] if nodes.size else nodes
    edges = K.find_edges(snapshot.indptr, snapshot.indices, u, v)
    edge_indptr = _cumsum(lens - 1)
    if (edges < 0).any():
        j = int(np.flatnonzero(edges < 0)[0])
        path_of_edge = np.repeat(np.arange(lens.size), lens - 1)
        a, b = int(u[j]), int(v[j])
        raise _Bad(int(pair_of_path[path_of_edge[j]]),
                   f"path uses link {a} '{_name(snapshot, a)}' - {b} '{_name(snapshot, b)}', "
                   "which is down at this step")
    routes = _routes(counts, node_indptr, nodes.astype(np.int32), edge_indptr,
                     edges.astype(np.int32), np.array(shares, np.float64), snapshot.delay_s)
    check_routes(snapshot, src, dst, routes, relay)
    return routes


def _is_node_seq(x) -> bool:
    if isinstance(x, np.ndarray):
        return x.ndim == 1 and np.issubdtype(x.dtype, np.integer)
    if isinstance(x, list | tuple) and x:
        return all(isinstance(i, int | np.integer) and not isinstance(i, bool) for i in x)
    return False


def _cumsum(counts) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def check_routes(snapshot: Snapshot, src, dst, routes, relay=None) -> None:
    """Raise ``_Bad`` for the first pair whose paths break a rule of the protocol."""
    n_pairs = src.shape[0]
    pp = np.asarray(routes.pair_path_indptr)
    if pp.shape != (n_pairs + 1,) or pp[0] != 0 or (np.diff(pp) < 0).any():
        raise _Bad(None, f"Routes.pair_path_indptr must be non-decreasing, length {n_pairs + 1}")
    n_paths = int(pp[-1])
    ep, ip = np.asarray(routes.path_edge_indptr), np.asarray(routes.path_node_indptr)
    if (ep.shape != (n_paths + 1,) or ip.shape != (n_paths + 1,)
            or routes.path_fraction.shape != (n_paths,)
            or not np.array_equal(np.diff(ip), np.diff(ep) + 1)):
        raise _Bad(None, "Routes path arrays disagree in length (every path has one node "
                         "more than edges)")
    pair_of_path = np.repeat(np.arange(n_pairs), np.diff(pp))
    edges = np.asarray(routes.path_edges, np.int64)
    nodes = np.asarray(routes.path_nodes, np.int64)
    if edges.size and (edges.min() < 0 or edges.max() >= snapshot.n_edges):
        raise _Bad(None, f"Routes.path_edges holds ids outside [0, {snapshot.n_edges})")
    first, last = nodes[ip[:-1]], nodes[ip[1:] - 1] if n_paths else nodes[:0]
    bad = np.flatnonzero(first != src[pair_of_path])
    if bad.size:
        j = int(bad[0])
        raise _Bad(int(pair_of_path[j]), f"path starts at node {int(first[j])} "
                                         f"'{_name(snapshot, first[j])}', not at the source")
    bad = np.flatnonzero(last != dst[pair_of_path])
    if bad.size:
        j = int(bad[0])
        raise _Bad(int(pair_of_path[j]), f"path ends at node {int(last[j])} "
                                         f"'{_name(snapshot, last[j])}', not at the destination")
    lens = np.diff(ip)
    path_of_node = np.repeat(np.arange(n_paths), lens)
    is_last = np.zeros(nodes.size, bool)
    is_last[ip[1:] - 1] = True
    tails = nodes[~is_last]
    heads = nodes[1:][~is_last[:-1]] if nodes.size else nodes
    src_of_edge = snapshot.edge_sources()
    ok = (src_of_edge[edges] == tails) & (snapshot.indices[edges] == heads)
    if not ok.all():
        j = int(np.flatnonzero(~ok)[0])
        path_of_edge = np.repeat(np.arange(n_paths), lens - 1)
        raise _Bad(int(pair_of_path[path_of_edge[j]]),
                   f"Routes.path_edges[{j}] is not the link {int(tails[j])} - {int(heads[j])}")
    # A node twice on one path is a loop.
    key = path_of_node * snapshot.n_nodes + nodes
    uniq, cnt = np.unique(key, return_counts=True)
    if (cnt > 1).any():
        k = int(uniq[np.flatnonzero(cnt > 1)[0]])
        path, node = divmod(k, snapshot.n_nodes)
        raise _Bad(int(pair_of_path[path]),
                   f"path visits node {node} '{_name(snapshot, node)}' twice (a loop)")
    if relay is not None and nodes.size:
        first_or_last = np.zeros(nodes.size, bool)
        first_or_last[ip[:-1]] = True
        first_or_last |= is_last
        bad = np.flatnonzero(~first_or_last & ~relay[nodes])
        if bad.size:
            j = int(bad[0])
            raise _Bad(int(pair_of_path[path_of_node[j]]),
                       f"path relays through node {int(nodes[j])} '{_name(snapshot, nodes[j])}'"
                       ", which may not relay (a ground station; see [routing].ground_relay)")
    frac = np.asarray(routes.path_fraction, np.float64)
    bad = np.flatnonzero(~np.isfinite(frac) | (frac < 0))
    if bad.size:
        j = int(bad[0])
        raise _Bad(int(pair_of_path[j]), f"share {frac[j]!r} is not a finite number >= 0")
    total = np.bincount(pair_of_path, weights=frac, minlength=n_pairs)
    has = np.diff(pp) > 0
    bad = np.flatnonzero(has & (np.abs(total - 1.0) > SHARE_TOL))
    if bad.size:
        p = int(bad[0])
        raise _Bad(p, f"shares sum to {total[p]:.6g}, not 1")


class ExternalPolicy:
    """A user policy behind the engine's ``route(snapshot, src, dst, ...)`` call.

    Parameters
    ----------
    impl : object
        Has ``route(request)`` (see the module docstring), or is a function of the request.
    name : str
        For messages.
    params : dict, optional
        ``[routing.params]``.
    n_nodes : int, optional
    relay_mask : array_like of bool, optional
        Nodes allowed to relay; default satellites only (``ground_relay`` true: all).
    on_error : {"stop", "fallback"}
    cfg : RoutingConfig, optional
        For the fallback policy and ``ground_relay``.
    """

    def __init__(self, impl, name: str, params=None, n_nodes=None, relay_mask=None,
                 on_error: str = "stop", cfg=None):
        self.impl = impl
        self.name = name
        self.params = dict(params or {})
        self.n_nodes = n_nodes
        self.relay_mask = None if relay_mask is None else np.asarray(relay_mask, np.bool_)
        self.on_error = on_error
        self.cfg = cfg
        self.n_calls = 0
        #: Steps routed by the fallback because the policy failed (``on_error = "fallback"``).
        self.policy_errors = 0
        self.first_error: str | None = None
        self._fallback = None

    def _relay(self, snapshot: Snapshot) -> np.ndarray:
        if self.relay_mask is not None:
            return self.relay_mask
        if self.cfg is not None and self.cfg.ground_relay:
            return np.ones(snapshot.n_nodes, np.bool_)
        return np.asarray(snapshot.node_kind == 0, np.bool_)

    def route(self, snapshot: Snapshot, src, dst, *, t_ns: int | None = None,
              edge_utilisation=None, future=None):
        src = np.ascontiguousarray(src, dtype=np.int32).ravel()
        dst = np.ascontiguousarray(dst, dtype=np.int32).ravel()
        t_ns = snapshot.t_ns if t_ns is None else int(t_ns)
        step = self.n_calls
        self.n_calls += 1
        relay = self._relay(snapshot)
        req = RouteRequest(snapshot=read_only(snapshot), src=src.copy(), dst=dst.copy(),
                           t_ns=t_ns, step=step, relay=relay.copy(),
                           edge_utilisation=None if edge_utilisation is None
                           else np.array(edge_utilisation, np.float64),
                           future=tuple(read_only(f) for f in (future or ())),
                           params=dict(self.params))
        where = f"routing policy '{self.name}' at step {step} (t = {t_ns / NS_PER_S:g} s)"
        try:
            fn = self.impl.route if hasattr(self.impl, "route") else self.impl
            answer = fn(req)
        except Exception as exc:  # the user's code: one line, then stop or fall back
            msg = f"{where}: route() raised {type(exc).__name__}: {_short(exc)}"
            return self._failed(msg, snapshot, src, dst, t_ns)
        try:
            return routes_from_answer(snapshot, src, dst, answer, relay)
        except _Bad as bad:
            pair = "" if bad.pair is None else (
                f", pair {bad.pair} ({_name(snapshot, src[bad.pair])} -> "
                f"{_name(snapshot, dst[bad.pair])})")
            return self._failed(f"{where}{pair}: {bad.what}", snapshot, src, dst, t_ns)

    def _failed(self, msg, snapshot, src, dst, t_ns):
        if self.on_error != "fallback":
            raise PolicyError(msg) from None
        self.policy_errors += 1
        if self.first_error is None:
            self.first_error = msg
            print(f"meshnet: warning: {msg}; routing this and any further failing step by "
                  "shortest_delay", file=sys.stderr)
        if self._fallback is None:
            from .policies import ShortestDelay

            self._fallback = ShortestDelay(self.cfg, self.n_nodes, self.relay_mask)
        return self._fallback.route(snapshot, src, dst, t_ns=t_ns)


def read_only(snapshot: Snapshot) -> Snapshot:
    """The snapshot over read-only views of its arrays: a policy cannot change the run's
    graph in place (scipy's ``eliminate_zeros`` on shared index arrays would)."""
    import dataclasses

    def ro(a):
        if not isinstance(a, np.ndarray):
            return a
        v = a.view()
        v.flags.writeable = False
        return v

    return dataclasses.replace(snapshot, **{f.name: ro(getattr(snapshot, f.name))
                                            for f in dataclasses.fields(snapshot)})


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def build_external(obj, cfg, n_nodes=None, relay_mask=None):
    """An :class:`ExternalPolicy` from a loaded plugin object (class, instance or function)."""
    from .policies import RoutingPolicy

    params = dict(getattr(cfg, "params", {}) or {})
    name = cfg.policy
    if isinstance(obj, type) and issubclass(obj, RoutingPolicy):
        inner = obj(cfg, n_nodes, relay_mask)
        inner.params = params

        def impl(req):
            return inner.route(req.snapshot, req.src, req.dst, t_ns=req.t_ns,
                               edge_utilisation=req.edge_utilisation, future=req.future)
    elif isinstance(obj, type):
        try:
            impl = obj(**params)
        except TypeError as exc:
            raise PolicyError(f"routing policy '{name}': {obj.__name__}(**[routing.params]) "
                              f"failed: {_short(exc)}; check the [routing.params] keys") from None
        except Exception as exc:
            raise PolicyError(f"routing policy '{name}': {obj.__name__}() raised "
                              f"{type(exc).__name__}: {_short(exc)}") from None
        if not callable(getattr(impl, "route", None)):
            raise PolicyError(f"routing policy '{name}': {obj.__name__} has no route(request) "
                              "method")
    elif callable(getattr(obj, "route", None)) or callable(obj):
        impl = obj
    else:
        raise PolicyError(f"routing policy '{name}' is a {type(obj).__name__}; expected a class "
                          "with route(request), an object with it, or a function")
    return ExternalPolicy(impl, name, params, n_nodes, relay_mask,
                          getattr(cfg, "on_error", "stop"), cfg)
