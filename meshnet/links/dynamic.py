"""The ``dynamic`` ISL topology: terminal-limited link assignment, step by step.

See :class:`DynamicTopology`. Candidates come from k-d trees (:func:`kdtree_candidates`), never
from all N^2 pairs.
"""

from __future__ import annotations

import numpy as np

from ..errors import MeshnetError
from ..timegrid import seconds_to_ns
from .feasibility import FeasibilityLimits, evaluate_links
from .reasons import DOWN, REASSIGNED
from .state import link_state
from .topology import TOPOLOGIES, IslRows, _valid_rows

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
       ``warm_start`` they start up).

    With ``reoptimise_interval_s`` set, a cross-plane link that has not been reviewed for that
    long is released before step 2 (reason ``reassigned``) and its two terminals compete with
    the free ones: if the same pair wins again it stays up with no new acquisition (only its
    review time is reset); otherwise the heads re-point to better partners. This models the
    roaming terminal that operators re-point for geometry, not only when a link fails.

    ``search`` may be replaced by a function with the signature of :func:`kdtree_candidates`
    (the benchmark swaps in an all-pairs search to compare).
    """

    search = staticmethod(kdtree_candidates)

    def __init__(self, cfg, constellation, limits: FeasibilityLimits, plane_key,
                 base_dir=None):
        self.cfg = cfg
        self.limits = limits
        self.plane_key = np.asarray(plane_key, dtype=np.int64)
        self.n = int(self.plane_key.shape[0])
        self.terminals = int(cfg.n_terminals)
        self.acquisition_ns = seconds_to_ns(cfg.acquisition_s)
        self.a = np.empty(0, np.int32)
        self.b = np.empty(0, np.int32)
        self.since_ns = np.empty(0, np.int64)
        self.review_ns = np.empty(0, np.int64)
        self.cls = np.empty(0, np.int8)
        self.reopt_ns = (None if cfg.reoptimise_interval_s is None
                         else seconds_to_ns(cfg.reoptimise_interval_s))
        self.t_last_ns: int | None = None

    def step(self, t_ns, r_km, v_km_s, sun_dir) -> IslRows:
        from ..kernels._links import greedy_matching, predicted_lifetime

        t_ns = int(t_ns)
        first = self.t_last_ns is None
        if not first and t_ns <= self.t_last_ns:
            raise MeshnetError(f"link states must advance in time: {t_ns} ns after "
                               f"{self.t_last_ns} ns")
        lim = self.limits
        reason, length = evaluate_links(r_km, v_km_s, self.a, self.b, sun_dir, lim,
                                        self.plane_key)
        keep = reason == 0
        br_a, br_b, br_reason, br_len = (self.a[~keep], self.b[~keep], reason[~keep],
                                         length[~keep])
        a, b, since, length = self.a[keep], self.b[keep], self.since_ns[keep], length[keep]
        review, link_cls = self.review_ns[keep], self.cls[keep]
        held_key = np.zeros(0, np.int64)
        held_since = np.zeros(0, np.int64)
        held_len = np.zeros(0)
        if self.reopt_ns is not None and not first:
            due = (link_cls != 0) & (t_ns - review >= self.reopt_ns)
            held_key = a[due].astype(np.int64) * (1 << 32) + b[due]
            held_since, held_len = since[due], length[due]
            keep2 = ~due
            a, b, since, length = a[keep2], b[keep2], since[keep2], length[keep2]
            review, link_cls = review[keep2], link_cls[keep2]

        degree = (np.bincount(a, minlength=self.n) + np.bincount(b, minlength=self.n))
        free = np.nonzero(_valid_rows(r_km, v_km_s) & (degree < self.terminals))[0]
        ca, cb, cls = self.search(r_km, v_km_s, free, int(self.cfg.dynamic_candidates),
                                  lim.coplanar_tolerance_deg, lim.range_cap_km)
        if ca.shape[0] and a.shape[0]:
            # A pair of free satellites may already be linked (terminals > 1).
            linked = a.astype(np.int64) * (1 << 32) + b
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
        greedy_matching(ca, cb, order, degree.astype(np.int64), self.terminals, accept)
        t0 = t_ns - self.acquisition_ns if (first and self.cfg.warm_start) else t_ns
        new_since = np.full(int(accept.sum()), t0, np.int64)
        if held_key.shape[0]:
            # Released links whose pair won again keep their acquisition time; the others
            # are reported down as reassigned.
            new_key = ca[accept].astype(np.int64) * (1 << 32) + cb[accept]
            pos = np.searchsorted(held_key, new_key)
            pos = np.minimum(pos, held_key.shape[0] - 1)
            again = held_key[pos] == new_key
            new_since[again] = held_since[pos[again]]
            gone = ~np.isin(held_key, new_key, assume_unique=True)
            br_a = np.concatenate([br_a, (held_key[gone] >> 32).astype(np.int32)])
            br_b = np.concatenate([br_b, (held_key[gone] & 0xFFFFFFFF).astype(np.int32)])
            br_reason = np.concatenate([br_reason,
                                        np.full(int(gone.sum()), REASSIGNED, np.int8)])
            br_len = np.concatenate([br_len, held_len[gone]])
        a = np.concatenate([a, ca[accept]])
        b = np.concatenate([b, cb[accept]])
        since = np.concatenate([since, new_since])
        review = np.concatenate([review, np.full(int(accept.sum()), t_ns, np.int64)])
        link_cls = np.concatenate([link_cls, cls[accept].astype(np.int8)])
        length = np.concatenate([length, c_len[accept]])
        order = np.lexsort((b, a))
        self.a, self.b, self.since_ns = a[order], b[order], since[order]
        self.review_ns, self.cls = review[order], link_cls[order]
        self.t_last_ns = t_ns
        length = length[order]
        state = link_state(t_ns, self.since_ns, self.acquisition_ns)
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
