"""Applying a fault schedule's per-step mask to the link layers (docs/faults.md).

Rules
-----
* A satellite that has **failed** has no links: its ISLs are DOWN (reason ``fault``, or
  ``storm`` when a storm lost it) and its ground links are released (same reason) and not
  selected while it is down.
* A satellite whose **lasers are down** (manoeuvre, storm with ``effect = "lasers"``, or an
  event with that effect) loses every ISL (reason ``manoeuvre`` / ``storm`` / ``fault``) and
  keeps its ground links (radio).
* A failed **laser head**: the heads of a satellite are numbered ``0..terminals-1`` for the
  topology, then ``terminals..`` for the inter-shell heads. For ``dynamic`` and the
  inter-shell layer a failed head is taken out of the satellite's free heads; if the
  satellite then carries more links than it has working heads, its most recently acquired
  links are released (reason ``fault``; the oldest are kept). For the fixed topologies
  (plus_grid, cluster, static) head ``k`` of a satellite carries its ``k``-th candidate link
  in ascending order of the partner's id; a failed head takes that link DOWN (``fault``).
* A failed **ground station** has no ground links: the links its antennas held are released
  (DOWN, ``fault``) at the step it fails and none is selected until it recovers.

* A satellite whose **lasers are off for power** (``[power] policy = "shed_lasers"``, set by
  :meth:`~meshnet.links.model.LinkModel.set_lasers_off`, docs/power.md) loses every ISL like a
  lasers-down satellite (reason ``power``, unless a fault gives its own) and keeps its ground
  links. The mask may be used without a fault schedule (``schedule=None``).

A fault makes the link infeasible for the state machine, so when the fault ends the link is
assigned again and acquires for ``acquisition_s`` like any new link (ground links, radio, are
up at once).
"""

from __future__ import annotations

import numpy as np

from .reasons import DOWN, FAULT, INVALID, MANOEUVRE, POWER, STORM, UP


def _ranks_by_key(owner, key, n):
    """Rank of each row among the rows of the same ``owner``, ordered by ``key``."""
    order = np.lexsort((key, owner))
    o = owner[order]
    start = np.searchsorted(o, np.arange(n))
    rank = np.empty(owner.shape[0], np.int64)
    rank[order] = np.arange(owner.shape[0]) - start[o]
    return rank


class FaultMask:
    """Sets the fault hooks of a :class:`~meshnet.links.model.LinkModel`'s layers per step."""

    def __init__(self, schedule, model):
        from ..faults.schedule import MANOEUVRE as K_MANOEUVRE
        from ..faults.schedule import STORM as K_STORM
        from .intershell import WithInterShell

        self.schedule = schedule
        self.n = model.n_sats
        self._k_storm, self._k_manoeuvre = K_STORM, K_MANOEUVRE
        isl = model.isl
        self.base, self.layer = (isl.base, isl.layer) if isinstance(isl, WithInterShell) \
            else (isl, None)
        self.dynamic_base = hasattr(self.base, "head_loss")
        base_heads = getattr(self.base, "terminals", None) if self.dynamic_base \
            else model.cfg.n_terminals
        self.base_heads = None if base_heads is None else int(base_heads)
        self.base.fault_reason = self._dynamic_hook if self.dynamic_base else self._fixed_hook
        if self.layer is not None:
            self.layer.fault_reason = self._layer_hook
        self.gsl = model.gsl
        self._rank_cache = None
        self.mask = None
        self.sat_reason = np.zeros(self.n, np.int8)
        self.gsl_reason = np.zeros(self.n, np.int8)
        #: (N,) bool: satellites whose lasers are off to save power (None: none).
        self.power_off = None

    # -- per step ------------------------------------------------------------------------
    def set_step(self, t_ns: int, r_km) -> None:
        from ..faults.schedule import FAILED, NO_EFFECT, StepFaults

        if self.schedule is None:  # lasers off for power only
            none = np.empty(0, np.int64)
            m = StepFaults(np.zeros(self.n, np.int8), np.full(self.n, -1, np.int8), none, none,
                           np.zeros(self.gsl.n_ground, dtype=bool))
        else:
            m = self.schedule.at(t_ns, r_km)
        self.mask = m
        reason = np.where(m.sat_kind == self._k_storm, STORM,
                          np.where(m.sat_kind == self._k_manoeuvre, MANOEUVRE, FAULT))
        self.sat_reason = np.where(m.sat_effect != NO_EFFECT, reason, 0).astype(np.int8)
        self.gsl_reason = np.where(m.sat_effect == FAILED, reason, 0).astype(np.int8)
        down = m.sat_effect != NO_EFFECT
        if self.power_off is not None:
            # Lasers off for power: like a lasers-down satellite (ground links kept); a fault
            # reason, if any, is reported instead.
            self.sat_reason = np.where((self.sat_reason == 0) & self.power_off, POWER,
                                       self.sat_reason).astype(np.int8)
            down = down | self.power_off
        hb = self.base_heads
        if self.dynamic_base:
            lost = m.heads_lost(self.n, 0, hb)
            self.base.head_loss = np.where(down, hb, np.minimum(lost, hb)).astype(np.int64)
            self.base_usable = hb - self.base.head_loss
        if self.layer is not None:
            h = self.layer.heads
            lost = (m.heads_lost(self.n, hb, hb + h) if hb is not None
                    else np.zeros(self.n, np.int64))
            self.layer.head_loss = np.where(down, h, np.minimum(lost, h)).astype(np.int64)
            self.layer_usable = h - self.layer.head_loss

    def gsl_positions(self, r_km):
        """Positions for the ground links: failed satellites have none (NaN)."""
        if not self.gsl_reason.any():
            return r_km
        r = np.array(r_km, dtype=np.float64, copy=True)
        r[self.gsl_reason != 0] = np.nan
        return r

    def before_gsl(self, r_km):
        """Release the antennas of stations that failed now; returns the released rows."""
        failed = self.mask.station_failed
        held = self.gsl.held
        if not failed.any() or held.shape[0] == 0:
            return None
        st, ant = np.nonzero(failed[:, None] & (held >= 0))
        sats = held[st, ant]
        held[failed] = -1
        return sats, st

    def after_gsl(self, rows, released, r_true):
        """Ground rows with the fault rules applied (see the module docs)."""
        sat, st, length, state, reason = rows
        failed = self.mask.station_failed
        if failed.any():
            keep = ~failed[st]
            sat, st, length, state, reason = (x[keep] for x in (sat, st, length, state,
                                                                 reason))
            self.gsl.held[failed] = -1  # antennas of a failed station hold nothing
        relabel = (state == DOWN) & (reason == INVALID) & (self.gsl_reason[sat] != 0) \
            & np.isfinite(r_true[sat, 0])
        reason = np.where(relabel, self.gsl_reason[sat], reason).astype(np.int8)
        if released is not None and released[0].shape[0]:
            rs, rst = released
            rlen = np.linalg.norm(np.asarray(r_true)[rs] - self.gsl.r_gs[rst], axis=1)
            sat = np.concatenate([sat, rs]).astype(np.int32)
            st = np.concatenate([st, rst]).astype(np.int32)
            length = np.concatenate([length, rlen])
            state = np.concatenate([state, np.full(rs.shape[0], DOWN, np.int8)])
            reason = np.concatenate([reason, np.full(rs.shape[0], FAULT, np.int8)])
            order = np.lexsort((st, sat))
            sat, st, length, state, reason = (x[order] for x in (sat, st, length, state,
                                                                 reason))
        return sat, st, length, state, reason

    # -- hooks (called by the layers inside their step) ----------------------------------
    def _sat_hook(self, a, b):
        r = self.sat_reason[a]
        return np.where(r != 0, r, self.sat_reason[b])

    def _fixed_hook(self, a, b, since_ns):
        r = self._sat_hook(a, b)
        m = self.mask
        if m is None or m.head.shape[0] == 0:
            return r
        cache = self._rank_cache
        if cache is None or cache[0] is not a:
            n = self.n
            ends = np.concatenate([a, b]).astype(np.int64)
            partner = np.concatenate([b, a]).astype(np.int64)
            rank = _ranks_by_key(ends, partner, n)
            cache = self._rank_cache = (a, rank[:a.shape[0]], rank[a.shape[0]:])
        _, ra, rb = cache
        big = np.int64(1 << 20)
        failed = np.unique(m.head_sat * big + m.head)
        hit = (np.isin(a.astype(np.int64) * big + ra, failed)
               | np.isin(b.astype(np.int64) * big + rb, failed))
        return np.where((r == 0) & hit, FAULT, r).astype(np.int8)

    def _over_heads(self, a, b, since_ns, r, usable):
        """Links beyond a satellite's working heads: the most recently acquired go (only
        links still assigned, ``since_ns`` given, are ranked)."""
        if since_ns is None:
            return r.astype(np.int8)
        ok = np.nonzero(r == 0)[0]
        if ok.shape[0] == 0:
            return r
        ends = np.concatenate([a[ok], b[ok]]).astype(np.int64)
        link = np.concatenate([ok, ok])
        since = np.asarray(since_ns, dtype=np.int64)[link]
        order = np.lexsort((link, since, ends))  # oldest first within a satellite
        e = ends[order]
        start = np.searchsorted(e, np.arange(self.n))
        rank = np.empty(ends.shape[0], np.int64)
        rank[order] = np.arange(ends.shape[0]) - start[e]
        over = rank >= usable[ends]
        drop = np.zeros(a.shape[0], dtype=bool)
        drop[link[over]] = True
        return np.where(drop, FAULT, r).astype(np.int8)

    def _dynamic_hook(self, a, b, since_ns):
        return self._over_heads(a, b, since_ns, self._sat_hook(a, b), self.base_usable)

    def _layer_hook(self, a, b, since_ns):
        return self._over_heads(a, b, since_ns, self._sat_hook(a, b), self.layer_usable)


__all__ = ["FaultMask", "UP"]
