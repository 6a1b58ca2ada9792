"""Inter-shell laser links: several shells as one network (fixed topologies).

The fixed topologies (``plus_grid``, ``cluster``, ``static``) link satellites inside their own
shell only, so a constellation of several shells is a set of islands and a ground station
reaches only the shell it happens to attach to. This layer gives every satellite of a
multi-shell constellation ``[links].inter_shell_terminals`` extra laser heads (default 1) that
may point only at satellites of *other* shells, and assigns them step by step:

1. assigned inter-shell links are re-checked with :func:`~meshnet.links.feasibility.evaluate_links`
   (the same checks and reason codes as every ISL: ``seam``, ``earth_blocked``,
   ``out_of_range``, ``polar``, ``angular_rate``, ``sun``); feasible links are kept
   (hysteresis: never dropped for a better partner), the others break (one DOWN row with the
   reason) and free a head at both ends;
2. candidates are searched among satellites with a free inter-shell head only, with one k-d
   tree per shell: every free satellite proposes its :data:`CANDIDATES_PER_SHELL` nearest free
   satellites of every other shell within the range cap (never all N^2 pairs);
3. feasible candidates are offered to the greedy matching shell pair by shell pair in rounds
   (:func:`balanced_order`): the level of a candidate is the number of links its shell pair
   already holds plus its rank among that pair's candidates (longest predicted lifetime first,
   then shortest, then ids); lower levels go first, and within a level the longest predicted
   lifetime, then the shortest link. A candidate is accepted while both ends have a free
   inter-shell head. New links acquire for ``acquisition_s`` (at the first step with
   ``warm_start`` they start up).

Why rounds rather than lifetime alone: two co-moving shells (Starlink's 550 km/53.0 deg and
540 km/53.2 deg) offer each other hour-long partners a few tens of km away, so a pure
lifetime ranking spends every head of those two shells on each other and leaves the other
shells an island of their own (measured on ``starlink_gen1``: see docs/links.md). Levelling the
shell pairs keeps links between every pair of shells that geometry allows.

:func:`with_inter_shell` composes the layer with a fixed topology; ``dynamic`` already links
across shells with its own heads and is left alone.
"""

from __future__ import annotations

import numpy as np

from ..timegrid import seconds_to_ns
from .dynamic import LIFETIME_HORIZON_S
from .feasibility import FeasibilityLimits, evaluate_links
from .reasons import DOWN
from .state import link_state
from .topology import FixedTopology, IslRows, _valid_rows, break_faulted, recheck_assigned

#: Nearest free satellites of every other shell that a free satellite proposes as partners.
CANDIDATES_PER_SHELL = 8


def _pair_key(a, b) -> np.ndarray:
    return np.asarray(a, dtype=np.int64) * (1 << 32) + np.asarray(b, dtype=np.int64)


def shell_labels(constellation, n: int) -> np.ndarray:
    """int64 shell index of every satellite (-1: no shell, e.g. an unassigned TLE)."""
    shell = getattr(constellation, "shell", None)
    if shell is None:
        return np.full(n, -1, dtype=np.int64)
    return np.asarray(shell, dtype=np.int64).reshape(n)


def inter_shell_mask(a, b, shell) -> np.ndarray:
    """Which links ``a[i]--b[i]`` join satellites of two different (known) shells.

    Ground station ids (``>= len(shell)``) are never inter-shell.
    """
    shell = np.asarray(shell, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    n = shell.shape[0]
    sat = (a < n) & (b < n)
    sa = np.where(sat, shell[np.minimum(a, n - 1)], -1)
    sb = np.where(sat, shell[np.minimum(b, n - 1)], -1)
    return sat & (sa >= 0) & (sb >= 0) & (sa != sb)


def intershell_candidates(r_km, free, shell, k: int, range_km: float):
    """Candidate inter-shell pairs among the satellites ``free``.

    Every satellite of ``free`` (with a shell) proposes its ``k`` nearest satellites of
    ``free`` in every other shell closer than ``range_km`` (ties by id), the same pairs as one
    k-d tree per shell, found with one grid search over the free satellites
    (:func:`meshnet.kernels._links.shell_knn_pairs`). Returns sorted unique ``(a, b)`` int32
    pairs with ``a < b``.
    """
    from ..kernels import _links as kern

    free = np.asarray(free, dtype=np.int64)
    free = free[(shell[free] >= 0) & _valid_rows(r_km[free], r_km[free])]
    e = np.empty(0, np.int32)
    labels, local = np.unique(shell[free], return_inverse=True)
    if labels.shape[0] < 2:
        return e, e
    # Ascending ids in, ascending local pairs out: mapping back keeps the (a, b) order.
    if free.shape[0] > 1 and not np.all(free[1:] > free[:-1]):
        free = np.unique(free)
        labels, local = np.unique(shell[free], return_inverse=True)
    pos = np.ascontiguousarray(r_km[free], dtype=np.float64)
    i, j = kern.shell_knn_pairs(pos, local.astype(np.int64), int(labels.shape[0]), int(k),
                                float(range_km))
    return free[i].astype(np.int32), free[j].astype(np.int32)


def balanced_order(a, b, life_s, length_km, pair_id, pair_count) -> np.ndarray:
    """Order in which candidate links are offered to the greedy matching.

    Parameters
    ----------
    a, b : numpy.ndarray
        Candidate link ends.
    life_s, length_km : numpy.ndarray
        Predicted lifetime and length of each candidate.
    pair_id : numpy.ndarray
        int64 id of each candidate's (unordered) shell pair.
    pair_count : numpy.ndarray
        Links every shell pair already holds, indexed by ``pair_id``.

    Returns
    -------
    numpy.ndarray
        int64 candidate indices: by level (``pair_count[pair] + rank within the pair``, the
        rank by longest lifetime, shortest, then ids), then longest lifetime, shortest, ids.
    """
    n = a.shape[0]
    if n == 0:
        return np.empty(0, np.int64)
    o = np.lexsort((b, a, length_km, -life_s, pair_id))
    sp = pair_id[o]
    first = np.searchsorted(sp, sp, side="left")
    rank = np.empty(n, dtype=np.int64)
    rank[o] = np.arange(n) - first
    level = pair_count[pair_id] + rank
    return np.lexsort((b, a, length_km, -life_s, level)).astype(np.int64)


class InterShellLinks:
    """Assignment of the inter-shell heads, step by step (see the module docs).

    Parameters
    ----------
    cfg : LinksConfig
        ``inter_shell_terminals``, ``acquisition_s``, ``warm_start``.
    shell : numpy.ndarray
        Shell index per satellite (-1: none; such satellites get no inter-shell head).
    limits : FeasibilityLimits
    plane_key : numpy.ndarray
        (shell, plane) labels; an inter-shell link always counts as cross-plane (``polar``).
    exclude : tuple of arrays, optional
        ``(a, b)`` pairs that are never proposed (links the fixed topology already lists).
    """

    def __init__(self, cfg, shell, limits: FeasibilityLimits, plane_key, exclude=None):
        self.cfg = cfg
        self.heads = int(cfg.inter_shell_terminals)
        self.shell = np.asarray(shell, dtype=np.int64)
        self.n = int(self.shell.shape[0])
        self.n_shells = int(self.shell.max()) + 1 if self.n else 0
        self.limits = limits
        self.plane_key = np.asarray(plane_key, dtype=np.int64)
        self.acquisition_ns = seconds_to_ns(cfg.acquisition_s)
        self.exclude_key = np.empty(0, np.int64)
        if exclude is not None:
            self.set_exclude(*exclude)
        self.a = np.empty(0, np.int32)
        self.b = np.empty(0, np.int32)
        self.since_ns = np.empty(0, np.int64)
        self.t_last_ns: int | None = None
        #: Set by the link model when faults are active (as on ``DynamicTopology``).
        self.fault_reason = None
        self.head_loss = None

    def set_exclude(self, a, b) -> None:
        """Pairs never proposed: only those joining two shells can matter."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        cross = inter_shell_mask(a, b, self.shell)
        lo, hi = np.minimum(a[cross], b[cross]), np.maximum(a[cross], b[cross])
        self.exclude_key = np.unique(_pair_key(lo, hi))

    def step(self, t_ns, r_km, v_km_s, sun_dir) -> IslRows:
        """Inter-shell rows at ``t_ns``: assigned links plus the links that broke now."""
        from ..kernels._links import greedy_matching, predicted_lifetime

        t_ns = int(t_ns)
        first = self.t_last_ns is None
        lim = self.limits
        keep, length, (br_a, br_b, br_reason, br_len) = recheck_assigned(
            t_ns, self.t_last_ns, self.a, self.b, r_km, v_km_s, sun_dir, lim, self.plane_key)
        a, b, since, length = self.a[keep], self.b[keep], self.since_ns[keep], length[keep]

        if self.fault_reason is not None:
            a, b, since, length, _, broken = break_faulted(
                self.fault_reason, a, b, since, length, (), (br_a, br_b, br_reason, br_len))
            br_a, br_b, br_reason, br_len = broken
        degree = np.bincount(a, minlength=self.n) + np.bincount(b, minlength=self.n)
        if self.head_loss is not None:
            degree = degree + self.head_loss  # failed heads count as taken
        free = np.nonzero(_valid_rows(r_km, v_km_s) & (self.shell >= 0)
                          & (degree < self.heads))[0]
        ca, cb = intershell_candidates(r_km, free, self.shell, CANDIDATES_PER_SHELL,
                                       lim.range_cap_km)
        if ca.shape[0] and (a.shape[0] or self.exclude_key.shape[0]):
            # Two free satellites may already be linked (more than one head each), and a
            # fixed topology may list a pair across shells itself (cluster, static). Both
            # ends of a candidate are free, so only pairs of two free satellites can match.
            is_free = np.zeros(self.n, dtype=bool)
            is_free[free] = True
            ex = self.exclude_key
            ex = ex[is_free[ex >> 32] & is_free[ex & 0xFFFFFFFF]]
            both = is_free[a] & is_free[b]
            taken = np.concatenate([_pair_key(a[both], b[both]), ex])
            if taken.shape[0]:
                fresh = ~np.isin(_pair_key(ca, cb), taken)
                ca, cb = ca[fresh], cb[fresh]
        c_reason, c_len = evaluate_links(r_km, v_km_s, ca, cb, sun_dir, lim, self.plane_key)
        ok = c_reason == 0
        ca, cb, c_len = ca[ok], cb[ok], c_len[ok]
        life = np.empty(ca.shape[0], dtype=np.float64)
        predicted_lifetime(r_km, v_km_s, ca, cb, lim.graze_radius_km, lim.range_cap_km,
                           LIFETIME_HORIZON_S, life)
        ns = max(self.n_shells, 1)
        pair_id = self._pair_ids(ca, cb, ns)
        pair_count = np.bincount(self._pair_ids(a, b, ns), minlength=ns * ns)
        order = balanced_order(ca, cb, life, c_len, pair_id, pair_count)
        accept = np.zeros(ca.shape[0], dtype=bool)
        greedy_matching(ca, cb, order, degree.astype(np.int64), self.heads, accept)
        t0 = t_ns - self.acquisition_ns if (first and self.cfg.warm_start) else t_ns
        a = np.concatenate([a, ca[accept]])
        b = np.concatenate([b, cb[accept]])
        since = np.concatenate([since, np.full(int(accept.sum()), t0, np.int64)])
        length = np.concatenate([length, c_len[accept]])
        # A stable sort of the (a, b) keys: the order of np.lexsort((b, a)), faster (the
        # kept links come sorted).
        order = np.argsort(_pair_key(a, b), kind="stable")
        self.a, self.b, self.since_ns = a[order], b[order], since[order]
        length = length[order]
        self.t_last_ns = t_ns
        state = link_state(t_ns, self.since_ns, self.acquisition_ns)
        rows_a = np.concatenate([self.a, br_a])
        rows_b = np.concatenate([self.b, br_b])
        order = np.argsort(_pair_key(rows_a, rows_b), kind="stable")
        return IslRows(
            a=rows_a[order].astype(np.int32),
            b=rows_b[order].astype(np.int32),
            state=np.concatenate([state, np.full(br_a.shape[0], DOWN, np.int8)])[order],
            reason=np.concatenate([np.zeros(self.a.shape[0], np.int8), br_reason])[order],
            length_km=np.concatenate([length, br_len])[order],
        )

    def _pair_ids(self, a, b, ns: int) -> np.ndarray:
        sa, sb = self.shell[a], self.shell[b]
        return np.minimum(sa, sb) * ns + np.maximum(sa, sb)


class WithInterShell:
    """A fixed topology plus the inter-shell layer; ``step`` merges their rows by (a, b)."""

    def __init__(self, base, layer: InterShellLinks, base_terminals: int | None):
        self.base = base
        self.layer = layer
        self.base_terminals = base_terminals
        self._excluded = False
        self._base_a = self._base_b = self._base_key = None

    @property
    def n_terminals(self) -> int | None:
        """Heads per satellite: the topology's plus the inter-shell ones (None: uncapped)."""
        if self.base_terminals is None:
            return None
        return int(self.base_terminals) + self.layer.heads

    def step(self, t_ns, r_km, v_km_s, sun_dir) -> IslRows:
        rows = self.base.step(t_ns, r_km, v_km_s, sun_dir)
        if not self._excluded:
            # The fixed topology's list is set at its first step and never changes.
            self.layer.set_exclude(rows.a, rows.b)
            self._excluded = True
        x = self.layer.step(t_ns, r_km, v_km_s, sun_dir)
        if rows.a is not self._base_a or rows.b is not self._base_b:
            # A fixed topology hands back the same link arrays every step: keys once.
            self._base_a, self._base_b = rows.a, rows.b
            self._base_key = _pair_key(rows.a, rows.b)
        return merge_rows(rows, x, self._base_key)


def merge_rows(p: IslRows, q: IslRows, key_p=None) -> IslRows:
    """Rows of two disjoint link sets, sorted by (a, b) (equal pairs: ``p``'s rows first).

    One stable sort of the concatenated (a, b) keys, the order of ``np.lexsort((b, a))``:
    when both inputs come sorted (as they do) it is a single merge of two runs. ``key_p``:
    ``p``'s keys ``a * 2**32 + b`` if already known.
    """
    if key_p is None:
        key_p = _pair_key(p.a, p.b)
    key = np.concatenate([key_p, _pair_key(q.a, q.b)])
    order = np.argsort(key, kind="stable")

    def put(x, y, dtype):
        return np.concatenate([np.asarray(x, dtype), np.asarray(y, dtype)]).take(order)

    return IslRows(a=put(p.a, q.a, np.int32), b=put(p.b, q.b, np.int32),
                   state=put(p.state, q.state, np.result_type(p.state, q.state)),
                   reason=put(p.reason, q.reason, np.result_type(p.reason, q.reason)),
                   length_km=put(p.length_km, q.length_km,
                                 np.result_type(p.length_km, q.length_km)))


def with_inter_shell(base, cfg, constellation, limits: FeasibilityLimits, plane_key):
    """``base`` with the inter-shell layer when it applies, else ``base`` itself.

    It applies when ``base`` is a fixed topology (``plus_grid``, ``cluster``, ``static``),
    ``inter_shell_terminals >= 1`` and at least two shells have satellites.
    """
    heads = int(getattr(cfg, "inter_shell_terminals", 0) or 0)
    if heads < 1 or not isinstance(base, FixedTopology):
        return base
    shell = shell_labels(constellation, base.n)
    if np.unique(shell[shell >= 0]).shape[0] < 2:
        return base
    layer = InterShellLinks(cfg, shell, limits, plane_key)
    return WithInterShell(base, layer, cfg.n_terminals)


def station_reachability(snapshot, n_sats: int) -> np.ndarray:
    """``(G, G)`` bool: whether stations i and j are joined by a path of UP links.

    Stations do not relay: two stations are reachable when some satellite linked to the first
    and some satellite linked to the second lie in one connected component of the
    satellite-only graph (scipy ``connected_components``). A station is reachable from
    itself when it has a ground link.
    """
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import connected_components

    src = snapshot.edge_sources().astype(np.int64)
    dst = snapshot.indices.astype(np.int64)
    n_ground = snapshot.n_nodes - n_sats
    isl = (src < n_sats) & (dst < n_sats)
    graph = csr_array((np.ones(int(isl.sum())), (src[isl], dst[isl])), shape=(n_sats, n_sats))
    _, comp = connected_components(graph, directed=False)
    gsl = (src >= n_sats) & (dst < n_sats)
    inc = csr_array((np.ones(int(gsl.sum())), (src[gsl] - n_sats, comp[dst[gsl]])),
                    shape=(n_ground, int(comp.max()) + 1 if n_sats else 1))
    return (inc @ inc.T).toarray() > 0
