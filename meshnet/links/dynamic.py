"""The ``dynamic`` ISL topology: terminal-limited link assignment, step by step.

See :class:`DynamicTopology`. Candidates come from k-d trees (:func:`kdtree_candidates`), never
from all N^2 pairs.
"""

from __future__ import annotations

import numpy as np

from ..timegrid import seconds_to_ns
from .feasibility import FeasibilityLimits, evaluate_links
from .reasons import DOWN, REASSIGNED
from .state import link_state
from .topology import TOPOLOGIES, IslRows, _valid_rows, break_faulted, recheck_assigned

#: Satellites of one plane whose orbital radii differ by more than this are not in-plane
#: neighbours (one of them is still raising or already lowering its orbit).
INPLANE_MAX_DR_KM = 25.0

#: Horizon of the predicted link lifetime used to rank new partners.
LIFETIME_HORIZON_S = 3600.0


def orbit_normals(r_km, v_km_s) -> np.ndarray:
    """Unit orbit normals ``r x v_inertial`` in Earth-fixed axes (NaN where undefined)."""
    from ..kernels._geometry import OMEGA_EARTH_RAD_S

    vi = v_km_s.copy()
    vi[:, 0] -= OMEGA_EARTH_RAD_S * r_km[:, 1]
    vi[:, 1] += OMEGA_EARTH_RAD_S * r_km[:, 0]
    h = np.cross(r_km, vi)
    with np.errstate(invalid="ignore", divide="ignore"):
        return h / np.linalg.norm(h, axis=1)[:, None]


def _inplane_pairs(r_km, v_km_s, pi, pj, ids):
    """In-plane candidates: each satellite of ``ids`` with its nearest coplanar satellite
    ahead and behind among the coplanar pairs ``pi--pj``."""
    from ..kernels._geometry import OMEGA_EARTH_RAD_S
    from ..kernels._links import inplane_neighbours

    n = r_km.shape[0]
    ahead = np.full(n, -1, dtype=np.int64)
    behind = np.full(n, -1, dtype=np.int64)
    inplane_neighbours(r_km, v_km_s, pi.astype(np.int64), pj.astype(np.int64),
                       INPLANE_MAX_DR_KM, OMEGA_EARTH_RAD_S, ahead, behind)
    src = np.concatenate([ids, ids])
    dst = np.concatenate([ahead[ids], behind[ids]])
    ok = dst >= 0
    return src[ok], dst[ok]


def kdtree_candidates(r_km, v_km_s, free, k: int, coplanar_tolerance_deg: float,
                      range_km: float):
    """Candidate partners among the satellites ``free`` (ids with a free terminal).

    Returns ``(a, b, cls)``: in-plane neighbours (nearest coplanar satellite ahead and behind,
    class 0) and the ``k`` nearest free satellites within ``range_km`` (class 1), as sorted
    unique pairs with the smaller class kept. Uses k-d trees, never all N^2 pairs.
    """
    from scipy.spatial import cKDTree

    nf = free.shape[0]
    if nf < 2:
        e = np.empty(0, np.int32)
        return e, e, np.empty(0, np.int8)
    h = orbit_normals(r_km[free], v_km_s[free])
    chord = 2.0 * np.sin(np.radians(coplanar_tolerance_deg) / 2.0)
    cop = cKDTree(h).query_pairs(chord, output_type="ndarray")
    ia, ib = _inplane_pairs(r_km, v_km_s, free[cop[:, 0]], free[cop[:, 1]], free)
    kk = min(k + 1, nf)
    _, idx = cKDTree(r_km[free]).query(r_km[free], k=kk, distance_upper_bound=range_km)
    idx = idx.reshape(nf, kk)
    src = np.repeat(np.arange(nf), kk)
    flat = idx.ravel()
    ok = (flat < nf) & (flat != src)
    return _merge_candidates(ia, ib, free[src[ok]], free[flat[ok]])


def _merge_candidates(ia, ib, na, nb):
    """Union of in-plane (class 0) and nearest (class 1) pairs, sorted, smaller class kept."""
    a = np.concatenate([ia, na]).astype(np.int64)
    b = np.concatenate([ib, nb]).astype(np.int64)
    cls = np.concatenate([np.zeros(ia.shape[0], np.int8), np.ones(na.shape[0], np.int8)])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    key = lo[keep] * (1 << 32) + hi[keep]
    cls = cls[keep]
    order = np.lexsort((cls, key))
    key, cls = key[order], cls[order]
    first = np.ones(key.shape[0], dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, cls = key[first], cls[first]
    return (key >> 32).astype(np.int32), (key & 0xFFFFFFFF).astype(np.int32), cls


#: Stream id mixed into the scenario seed for the acquisition-time draws (so that other
#: random choices seeded from the same scenario seed are independent of these).
ACQUISITION_STREAM = 0x1A5E12

#: ``drain_ns`` of a link that is not being handed over.
NOT_DRAINING = np.iinfo(np.int64).max


def acquisition_times_ns(rng, n: int, median_s: float, sigma: float) -> np.ndarray:
    """Acquisition times of ``n`` new links in ns: lognormal with median ``median_s`` and
    standard deviation ``sigma`` of the natural log (exactly ``median_s`` when sigma is 0).

    Examples
    --------
    >>> acquisition_times_ns(None, 2, 30.0, 0.0).tolist()
    [30000000000, 30000000000]
    """
    if sigma <= 0.0 or n == 0:
        return np.full(n, seconds_to_ns(median_s), np.int64)
    t_s = median_s * np.exp(sigma * rng.standard_normal(n))
    return np.ceil(t_s * 1e9).astype(np.int64)


def _one_per_satellite(a, b, n):
    """Mask of links (in the given order) accepted while neither end was taken before."""
    taken = np.zeros(n, dtype=bool)
    ok = np.zeros(a.shape[0], dtype=bool)
    for k in range(a.shape[0]):
        if not taken[a[k]] and not taken[b[k]]:
            taken[a[k]] = taken[b[k]] = True
            ok[k] = True
    return ok


@TOPOLOGIES.register("dynamic")
class DynamicTopology:
    """Terminal-limited link assignment, step by step.

    At every step:

    1. assigned links are re-checked; the feasible ones are kept (hysteresis: a link is never
       dropped for a better one), the others break (a DOWN row with the reason) and free the
       terminals at both ends;
    2. candidates are found among the satellites with a free terminal only: the nearest
       coplanar satellite ahead and behind (orbit normals within ``coplanar_tolerance_deg``
       and radii within 25 km; no plane labels needed) and the ``dynamic_candidates``
       nearest within range, with k-d trees;
    3. feasible candidates are ranked in-plane first, then by the predicted lifetime (time
       until the pair would leave its range limit under straight-line relative motion,
       longest first), then shortest, then by ids; and accepted greedily while both ends have
       a free terminal. New links acquire for ``acquisition_s`` (at the first step with
       ``warm_start`` they start up), or, with ``acquisition_sigma > 0``, for a time drawn
       from a lognormal distribution with median ``acquisition_s`` (one draw per new link,
       from a :class:`numpy.random.Generator` seeded with the scenario seed).

    With ``reoptimise_interval_s`` set, a cross-plane link that has not been reviewed for that
    long is released before step 2 and its two terminals compete with the free ones: if the
    same pair wins again, or if neither end found another partner, it stays up with no new
    acquisition (only its review time is reset); otherwise the heads re-point to better
    partners and the old link is reported down as ``reassigned``. This models the roaming
    terminal that operators re-point for geometry, not only when a link fails.

    ``handover = "make_before_break"``: the matching fills at most ``terminals - 1`` heads of a
    satellite; the last head is kept for hand-overs. A re-pointed link is not released at
    once: it keeps carrying (UP) while its replacements acquire, on the spare head, and is
    released (``reassigned``) at the step its last replacement is up (earlier only if it
    breaks). A satellite hands over one link at a time, so heads in use (UP or ACQUIRING)
    never exceed ``terminals``.

    ``search`` may be replaced by a function with the signature of :func:`kdtree_candidates`
    (the benchmark swaps in an all-pairs search to compare).
    """

    search = staticmethod(kdtree_candidates)

    def __init__(self, cfg, constellation, limits: FeasibilityLimits, plane_key,
                 base_dir=None, seed: int = 0):
        self.cfg = cfg
        self.limits = limits
        self.plane_key = np.asarray(plane_key, dtype=np.int64)
        self.n = int(self.plane_key.shape[0])
        self.terminals = int(cfg.n_terminals)
        self.mbb = getattr(cfg, "handover", "break_before_make") == "make_before_break"
        # Heads the matching may fill; make-before-break keeps one for hand-overs.
        self.match_cap = self.terminals - 1 if self.mbb else self.terminals
        self.acquisition_s = float(cfg.acquisition_s)
        self.sigma = float(getattr(cfg, "acquisition_sigma", 0.0) or 0.0)
        self.acquisition_ns = seconds_to_ns(cfg.acquisition_s)
        self.a = np.empty(0, np.int32)
        self.b = np.empty(0, np.int32)
        self.since_ns = np.empty(0, np.int64)
        self.acq_ns = np.empty(0, np.int64)
        self.review_ns = np.empty(0, np.int64)
        self.drain_ns = np.empty(0, np.int64)
        self.cls = np.empty(0, np.int8)
        self.reopt_ns = (None if cfg.reoptimise_interval_s is None
                         else seconds_to_ns(cfg.reoptimise_interval_s))
        self.new_partner = bool(getattr(cfg, "reoptimise_new_partner", False))
        self.t_last_ns: int | None = None
        #: Set by the link model when faults are active: ``hook(a, b, since_ns)`` gives each
        #: link's fault reason (0: none), and failed heads per satellite (links/fault_mask.py).
        self.fault_reason = None
        self.head_loss = None
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Seed the acquisition-time draws (the scenario seed; called by the link model)."""
        self.seed = int(seed)
        self.rng = np.random.default_rng([self.seed, ACQUISITION_STREAM])

    def _columns(self):
        return (self.a, self.b, self.since_ns, self.acq_ns, self.review_ns, self.drain_ns,
                self.cls)

    def step(self, t_ns, r_km, v_km_s, sun_dir) -> IslRows:
        from ..kernels._links import greedy_matching, predicted_lifetime

        t_ns = int(t_ns)
        first = self.t_last_ns is None
        lim = self.limits
        keep, length, (br_a, br_b, br_reason, br_len) = recheck_assigned(
            t_ns, self.t_last_ns, self.a, self.b, r_km, v_km_s, sun_dir, lim, self.plane_key)
        a, b, since, acq, review, drain, link_cls = (c[keep] for c in self._columns())
        length = length[keep]
        if self.fault_reason is not None:
            a, b, since, length, (acq, review, drain, link_cls), broken = break_faulted(
                self.fault_reason, a, b, since, length, (acq, review, drain, link_cls),
                (br_a, br_b, br_reason, br_len))
            br_a, br_b, br_reason, br_len = broken
        # Hand-overs whose replacements are up: the old link is released now.
        done = drain <= t_ns
        if done.any():
            br_a = np.concatenate([br_a, a[done]])
            br_b = np.concatenate([br_b, b[done]])
            br_reason = np.concatenate([br_reason, np.full(int(done.sum()), REASSIGNED,
                                                           np.int8)])
            br_len = np.concatenate([br_len, length[done]])
            a, b, since, acq, review, drain, link_cls, length = (
                c[~done] for c in (a, b, since, acq, review, drain, link_cls, length))
        draining = drain != NOT_DRAINING
        due = np.zeros(a.shape[0], dtype=bool)
        if self.reopt_ns is not None and not first:
            due = (link_cls != 0) & (t_ns - review >= self.reopt_ns) & ~draining
            if self.mbb and due.any():
                # One hand-over at a time per satellite, none where one is under way.
                busy = np.zeros(self.n, dtype=bool)
                busy[a[draining]] = busy[b[draining]] = True
                idx = np.nonzero(due & ~busy[a] & ~busy[b])[0]
                idx = idx[np.argsort(review[idx], kind="stable")]
                due[:] = False
                due[idx[_one_per_satellite(a[idx], b[idx], self.n)]] = True
        held = (a[due], b[due], since[due], acq[due], length[due])
        held_key = held[0].astype(np.int64) * (1 << 32) + held[1]
        # Heads in logical use: kept links, not those under review or being handed over.
        logical = ~due & ~draining
        degree = (np.bincount(a[logical], minlength=self.n)
                  + np.bincount(b[logical], minlength=self.n))
        if self.head_loss is not None:
            degree = degree + self.head_loss  # failed heads count as taken
        free = np.nonzero(_valid_rows(r_km, v_km_s) & (degree < self.match_cap))[0]
        ca, cb, cls = self.search(r_km, v_km_s, free, int(self.cfg.dynamic_candidates),
                                  lim.coplanar_tolerance_deg, lim.range_cap_km)
        if ca.shape[0] and a.shape[0]:
            # A pair of free satellites may already be linked (terminals > 1); a link under
            # review may win again.
            linked = a[~due].astype(np.int64) * (1 << 32) + b[~due]
            if self.new_partner:
                linked = np.union1d(linked, held_key)
            fresh = ~np.isin(ca.astype(np.int64) * (1 << 32) + cb, linked,
                             assume_unique=True)
            ca, cb, cls = ca[fresh], cb[fresh], cls[fresh]
        c_reason, c_len = evaluate_links(r_km, v_km_s, ca, cb, sun_dir, lim, self.plane_key)
        ok = c_reason == 0
        ca, cb, cls, c_len = ca[ok], cb[ok], cls[ok], c_len[ok]
        life = np.empty(ca.shape[0], dtype=np.float64)
        predicted_lifetime(r_km, v_km_s, ca, cb, lim.graze_radius_km, lim.range_cap_km,
                           LIFETIME_HORIZON_S, life)
        order = np.lexsort((cb, ca, c_len, -life, cls)).astype(np.int64)
        accept = np.zeros(ca.shape[0], dtype=bool)
        greedy_matching(ca, cb, order, degree.astype(np.int64), self.match_cap, accept)
        na, nb, n_cls, n_len = ca[accept], cb[accept], cls[accept], c_len[accept]
        new_key = na.astype(np.int64) * (1 << 32) + nb
        again = np.zeros(na.shape[0], dtype=bool)
        if held_key.shape[0]:
            pos = np.minimum(np.searchsorted(held_key, new_key), held_key.shape[0] - 1)
            again = held_key[pos] == new_key
        # New links draw their acquisition times (in acceptance order: reproducible).
        n_acq = int((~again).sum())
        new_acq = np.empty(na.shape[0], np.int64)
        new_acq[~again] = acquisition_times_ns(self.rng, n_acq, self.acquisition_s, self.sigma)
        new_since = np.full(na.shape[0], t_ns, np.int64)
        if first and self.cfg.warm_start:
            new_since -= new_acq
        new_drain = np.full(na.shape[0], NOT_DRAINING, np.int64)
        if held_key.shape[0]:
            # Pairs that won again keep their acquisition (only the review time is reset).
            new_since[again] = held[2][pos[again]]
            new_acq[again] = held[3][pos[again]]
            lost = ~np.isin(held_key, new_key[again], assume_unique=True)
            # A link is only released for a partner that replaces it at one of its ends.
            touched = np.zeros(self.n, dtype=bool)
            touched[na[~again]] = touched[nb[~again]] = True
            ha, hb = held[0], held[1]
            lost &= touched[ha] | touched[hb]
            keep_held = ~np.isin(held_key, new_key, assume_unique=True) & ~lost
            if self.mbb:
                # The old link carries until the replacements at its ends are up.
                up_at = np.full(self.n, np.iinfo(np.int64).min, np.int64)
                ends = np.concatenate([na[~again], nb[~again]])
                ready = np.concatenate([new_since[~again] + new_acq[~again]] * 2)
                np.maximum.at(up_at, ends, ready)
                hand = lost
                lost = np.zeros_like(lost)
            else:
                hand = np.zeros_like(lost)
            br_a = np.concatenate([br_a, ha[lost]])
            br_b = np.concatenate([br_b, hb[lost]])
            br_reason = np.concatenate([br_reason, np.full(int(lost.sum()), REASSIGNED,
                                                           np.int8)])
            br_len = np.concatenate([br_len, held[4][lost]])
            # Links kept under review or handed over go back in the assigned list.
            back = keep_held | hand
            h_drain = np.full(int(back.sum()), NOT_DRAINING, np.int64)
            if self.mbb:
                h_drain[hand[back]] = np.maximum(up_at[ha[hand]], up_at[hb[hand]])
            na = np.concatenate([na, ha[back]])
            nb = np.concatenate([nb, hb[back]])
            new_since = np.concatenate([new_since, held[2][back]])
            new_acq = np.concatenate([new_acq, held[3][back]])
            new_drain = np.concatenate([new_drain, h_drain])
            n_cls = np.concatenate([n_cls, np.ones(int(back.sum()), np.int8)])
            n_len = np.concatenate([n_len, held[4][back]])
        keep = ~due
        a = np.concatenate([a[keep], na])
        b = np.concatenate([b[keep], nb])
        since = np.concatenate([since[keep], new_since])
        acq = np.concatenate([acq[keep], new_acq])
        new_review = np.full(na.shape[0], t_ns, np.int64)
        if self.new_partner and na.shape[0]:
            # Stagger the reviews (the first review after 0.5-1.5 intervals, uniformly) so
            # that roaming links are not all rotated at the same step.
            fresh = np.nonzero(~again)[0]  # newly acquired (held links come after them)
            u = self.rng.random(fresh.shape[0]) - 0.5
            new_review[fresh] -= np.round(u * self.reopt_ns).astype(np.int64)
        review = np.concatenate([review[keep], new_review])
        drain = np.concatenate([drain[keep], new_drain])
        link_cls = np.concatenate([link_cls[keep], n_cls.astype(np.int8)])
        length = np.concatenate([length[keep], n_len])
        order = np.lexsort((b, a))
        (self.a, self.b, self.since_ns, self.acq_ns, self.review_ns, self.drain_ns,
         self.cls) = (c[order] for c in (a, b, since, acq, review, drain, link_cls))
        self.t_last_ns = t_ns
        length = length[order]
        state = link_state(t_ns, self.since_ns, self.acq_ns)
        rows_a = np.concatenate([self.a, br_a])
        rows_b = np.concatenate([self.b, br_b])
        order = np.lexsort((rows_b, rows_a))
        return IslRows(
            a=rows_a[order],
            b=rows_b[order],
            state=np.concatenate([state, np.full(br_a.shape[0], DOWN, np.int8)])[order],
            reason=np.concatenate([np.zeros(self.a.shape[0], np.int8), br_reason])[order],
            length_km=np.concatenate([length, br_len])[order],
        )
