"""Latency sanity: the great-circle lower bound of a round trip, and a route's stretch over it.

A signal between two ground stations must go up to a satellite, travel outside the Earth and
come down again. Whatever the constellation, its one-way path is at least

``L = R * sigma + 2 * (s_max - R * theta_max)``        (``sigma >= 2 theta_max``)

(the great circle less the part each ground link covers, plus the two links) where ``sigma``
is the central angle between the stations (``R * sigma`` is the great-circle distance),
``theta_max`` the Earth central angle a single ground link can span at most (at the
elevation mask, for the lowest satellites; or at Hypatia's maximum ground-link length) and
``s_max`` that link's slant range. Stations closer than ``2 theta_max`` can share one
satellite: then ``L = 2 * |A - S|`` with ``S`` at the lowest altitude above the midpoint.

Why it is a lower bound:

* every inter-satellite segment lies outside the sphere of radius ``R``, and projecting a curve
  outside a ball radially onto the sphere never lengthens it, so the part between the first
  and the last satellite is at least ``R`` times its central angle;
* a ground link of slant ``s`` spanning central angle ``theta`` has
  ``ds/dtheta = R cos(elevation) <= R``, so ``s - R theta`` is smallest at the largest span
  (the mask), and it grows with the satellite's altitude (the lowest shell gives the bound).

* stations closer than the two links' spans: any path is at least the shortest up-and-down
  over one point at the lowest altitude (triangle inequality), found by a 1-D search.

Each station's ground link is computed at its own geocentric radius (WGS84), the great circle
between the two links on the sphere of the smaller radius. Pairs with a satellite at either
end are bounded by the shortest path between the two points that stays outside the Earth (a
straight line if it clears the sphere of radius ``R``, else the two tangents and the arc
between them).

The round-trip bound is ``2 L / c`` (vacuum). A route's *stretch* is its RTT over this bound;
meshnet flags routes above :data:`STRETCH_FLAG` (2x).

Examples
--------
Tokyo to New York (10,850 km of great circle) over satellites at 550 km with a 25 deg mask:

>>> import numpy as np
>>> from meshnet.latency import rtt_bound_s, surface_point_km
>>> tokyo = surface_point_km(35.69, 139.69)
>>> new_york = surface_point_km(40.71, -74.01)
>>> round(rtt_bound_s(tokyo, new_york, altitude_km=550.0, min_elevation_deg=25.0) * 1e3, 1)
74.9
"""

from __future__ import annotations

import math

import numpy as np

from .units import C_KM_S, R_EARTH_KM

#: Routes whose RTT exceeds this multiple of the great-circle bound are flagged.
STRETCH_FLAG = 2.0


def surface_point_km(lat_deg, lon_deg, radius_km: float = R_EARTH_KM) -> np.ndarray:
    """Earth-fixed position (km) of a point on a sphere of ``radius_km`` (for examples, tests).

    Examples
    --------
    >>> surface_point_km(0.0, 90.0).round(3).tolist()
    [0.0, 6378.135, 0.0]
    """
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    return radius_km * xyz


def ground_link_span(radius_km: float, altitude_km: float, min_elevation_deg: float | None = None,
                     max_gsl_length_km: float | None = None) -> tuple[float, float]:
    """``(theta_max_rad, slant_km)``: the widest central angle one ground link can span.

    With an elevation mask ``e``: ``theta = 90 deg - e - asin(R cos e / r)``. With Hypatia's
    distance rule (no mask), the span where the slant range reaches ``max_gsl_length_km``,
    at most the horizon's ``acos(R / r)``. With both, the smaller span.

    Examples
    --------
    >>> theta, s = ground_link_span(6378.135, 550.0, min_elevation_deg=25.0)
    >>> round(math.degrees(theta), 3), round(s, 1)
    (8.451, 1123.4)
    """
    r_g = float(radius_km)
    r_s = r_g + float(altitude_km)
    if r_s <= r_g:
        raise ValueError(f"satellite altitude must be positive, got {altitude_km} km")
    theta = math.acos(r_g / r_s)  # the horizon
    if min_elevation_deg is not None:
        e = math.radians(float(min_elevation_deg))
        theta = min(theta, math.pi / 2 - e - math.asin(r_g * math.cos(e) / r_s))
    if max_gsl_length_km is not None:
        # Law of cosines: s^2 = r_g^2 + r_s^2 - 2 r_g r_s cos(theta).
        c = (r_g * r_g + r_s * r_s - float(max_gsl_length_km) ** 2) / (2 * r_g * r_s)
        theta = min(theta, math.acos(min(1.0, max(-1.0, c))))
    theta = max(theta, 0.0)
    slant = math.sqrt(max(r_g * r_g + r_s * r_s - 2 * r_g * r_s * math.cos(theta), 0.0))
    return theta, slant


def _central_angle(a_km, b_km) -> np.ndarray:
    a = np.asarray(a_km, dtype=np.float64)
    b = np.asarray(b_km, dtype=np.float64)
    # atan2 of |a x b| and a.b: accurate for tiny and near-antipodal angles alike.
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.arctan2(cross, np.einsum("...i,...i->...", a, b))


def ground_bound_km(a_km, b_km, altitude_km, min_elevation_deg: float | None = None,
                    max_gsl_length_km: float | None = None) -> np.ndarray:
    """One-way lower bound (km) between ground points ``a_km`` and ``b_km`` (``(..., 3)``).

    ``altitude_km`` is the lowest satellite altitude above ``R_EARTH_KM`` that may carry a
    ground link (a scalar; the bound grows with it, so the lowest shell gives the bound for a
    multi-shell network). Each station's ground link is computed at its own geocentric radius;
    the great circle between the two links at the smaller radius.
    """
    a = np.asarray(a_km, dtype=np.float64)
    b = np.asarray(b_km, dtype=np.float64)
    r_a = np.linalg.norm(a, axis=-1)
    r_b = np.linalg.norm(b, axis=-1)
    r_s = R_EARTH_KM + float(altitude_km)
    span = np.vectorize(lambda r: ground_link_span(r, r_s - r, min_elevation_deg,
                                                   max_gsl_length_km), otypes=[float, float])
    theta_a, s_a = span(r_a)
    theta_b, s_b = span(r_b)
    sigma = _central_angle(a, b)
    far = np.minimum(r_a, r_b) * (sigma - theta_a - theta_b) + s_a + s_b
    # Within reach of one satellite: the shortest up-and-down over any point at r_s in the
    # stations' great-circle plane (a convex 1-D problem: ternary search on the angle from a).
    lo = np.zeros_like(sigma)
    hi = sigma.copy()

    def total(phi):
        up = r_a * r_a + r_s * r_s - 2 * r_a * r_s * np.cos(phi)
        down = r_b * r_b + r_s * r_s - 2 * r_b * r_s * np.cos(sigma - phi)
        return np.sqrt(np.maximum(up, 0.0)) + np.sqrt(np.maximum(down, 0.0))

    for _ in range(60):
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        left = total(m1) <= total(m2)
        hi = np.where(left, m2, hi)
        lo = np.where(left, lo, m1)
    near = total((lo + hi) / 2)
    return np.where(sigma >= theta_a + theta_b, far, near)


def outside_earth_km(a_km, b_km, radius_km: float = R_EARTH_KM) -> np.ndarray:
    """Shortest distance (km) between two points that stays outside a sphere of ``radius_km``.

    A straight line if it clears the sphere; otherwise the tangent from each point plus the
    arc between the tangent points.

    Examples
    --------
    >>> r = 7000.0
    >>> a, b = np.array([r, 0.0, 0.0]), np.array([-r, 0.0, 0.0])
    >>> t = math.sqrt(r * r - 6378.135 ** 2)
    >>> bool(np.isclose(outside_earth_km(a, b), 2 * t + 6378.135 * (math.pi - 2 * math.acos(
    ...     6378.135 / r))))
    True
    """
    a = np.asarray(a_km, dtype=np.float64)
    b = np.asarray(b_km, dtype=np.float64)
    rho = float(radius_km)
    ra = np.maximum(np.linalg.norm(a, axis=-1), rho)
    rb = np.maximum(np.linalg.norm(b, axis=-1), rho)
    sigma = _central_angle(a, b)
    alpha = np.arccos(rho / ra)
    beta = np.arccos(rho / rb)
    wrapped = np.sqrt(ra * ra - rho * rho) + np.sqrt(rb * rb - rho * rho) + rho * (
        sigma - alpha - beta)
    straight = np.linalg.norm(a - b, axis=-1)
    return np.where(sigma > alpha + beta, wrapped, straight)


def rtt_bound_s(a_km, b_km, altitude_km, min_elevation_deg: float | None = None,
                max_gsl_length_km: float | None = None) -> np.ndarray | float:
    """Round-trip lower bound (s) between two ground points: ``2 L / c`` (see the module).

    Examples
    --------
    >>> london, paris = surface_point_km(51.51, -0.13), surface_point_km(48.86, 2.35)
    >>> round(rtt_bound_s(london, paris, 550.0, 25.0) * 1e3, 2)  # up 550 km and down again
    7.72
    """
    out = 2.0 * ground_bound_km(a_km, b_km, altitude_km, min_elevation_deg,
                                max_gsl_length_km) / C_KM_S
    return float(out) if np.ndim(out) == 0 else out


class LatencyBound:
    """Bounds for the node pairs of one network: ground pairs fixed, satellite ends per step.

    Parameters
    ----------
    n_sats : int
        Node ids ``0..n_sats-1`` are satellites, the rest ground stations.
    ground_r_km : array_like
        ``(G, 3)`` Earth-fixed station positions.
    altitude_km : float
        Lowest satellite altitude that may carry a ground link.
    min_elevation_deg, max_gsl_length_km : float, optional
        The ground-link rule (see :func:`ground_link_span`).

    Examples
    --------
    >>> st = np.stack([surface_point_km(35.69, 139.69), surface_point_km(40.71, -74.01)])
    >>> lb = LatencyBound(10, st, altitude_km=550.0, min_elevation_deg=25.0)
    >>> round(float(lb.one_way_s(np.array([10]), np.array([11]))[0]) * 2e3, 1)
    74.9
    """

    def __init__(self, n_sats: int, ground_r_km, altitude_km: float,
                 min_elevation_deg: float | None = None,
                 max_gsl_length_km: float | None = None):
        self.n_sats = int(n_sats)
        self.ground_r_km = np.asarray(ground_r_km, dtype=np.float64).reshape(-1, 3)
        self.altitude_km = float(altitude_km)
        self.min_elevation_deg = min_elevation_deg
        self.max_gsl_length_km = max_gsl_length_km

    @classmethod
    def for_world(cls, scenario, world, r_km=None) -> LatencyBound:
        """The bound of a scenario's network.

        The lowest altitude is taken from ``r_km`` (satellite positions) when given, else from
        the constellation propagated over one orbit (100 minutes at 50 s) from the scenario's
        epoch, less 1 km: osculating radii vary by several km around an orbit.
        """
        from .links.gsl import GroundLinks

        gsl = GroundLinks(scenario.ground, world.ground,
                          getattr(world.constellation, "max_gsl_length_km", None))
        if r_km is None:
            from .orbits.propagate import propagate

            r_km = propagate(world.constellation, scenario.grid(duration_s=6000, step_s=50)).r_km
        radius = np.linalg.norm(np.asarray(r_km, dtype=np.float64), axis=-1)
        radius = radius[np.isfinite(radius)]
        altitude = float(radius.min()) - R_EARTH_KM - 1.0 if radius.size else 0.0
        use_len = gsl.max_gsl_length_km is not None
        return cls(world.n_sats, gsl.r_gs, max(altitude, 1.0),
                   None if use_len else gsl.min_elevation_deg,
                   gsl.max_gsl_length_km if use_len else None)

    def one_way_s(self, src, dst, r_km=None) -> np.ndarray:
        """One-way lower bound (s) of each pair; pairs with a satellite end need ``r_km``."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        out = np.full(src.shape, np.nan)
        ground = (src >= self.n_sats) & (dst >= self.n_sats)
        if ground.any():
            a = self.ground_r_km[src[ground] - self.n_sats]
            b = self.ground_r_km[dst[ground] - self.n_sats]
            out[ground] = ground_bound_km(a, b, self.altitude_km, self.min_elevation_deg,
                                          self.max_gsl_length_km) / C_KM_S
        other = ~ground
        if other.any() and r_km is not None:
            r = np.asarray(r_km, dtype=np.float64)
            pos = np.concatenate([r, self.ground_r_km])
            out[other] = outside_earth_km(pos[src[other]], pos[dst[other]]) / C_KM_S
        return out


class StretchStats:
    """Stretch of the routes between ground stations over a run, in bounded memory.

    Per station pair: steps routed, the sum of stretch and the largest stretch; over all
    pair-steps: a histogram (bins of :attr:`BIN` up to :attr:`TOP`, the last bin open) for the
    median and 95th percentile.

    Examples
    --------
    >>> st = np.stack([surface_point_km(35.69, 139.69), surface_point_km(40.71, -74.01)])
    >>> acc = StretchStats(LatencyBound(10, st, 550.0, 25.0))
    >>> acc.add(np.array([10, 11]), np.array([11, 10]), np.array([0.0441, 0.1]))
    >>> s = acc.summary(np.array(["Tokyo", "New York"]))
    >>> s["pairs"], s["flagged_pairs"], s["worst"]["src"], round(s["worst"]["stretch"], 2)
    (2, 1, 'New York', 2.67)
    """

    BIN = 0.01
    TOP = 20.0

    def __init__(self, bound: LatencyBound):
        self.bound = bound
        g = bound.ground_r_km.shape[0]
        self.g = g
        self.steps = np.zeros(g * g, np.int64)
        self.sum = np.zeros(g * g)
        self.max = np.zeros(g * g)
        self.hist = np.zeros(int(self.TOP / self.BIN) + 1, np.int64)
        self._bound_s = None

    def add(self, src, dst, one_way_s) -> None:
        """Fold in one step: the routed pairs and their primary paths' one-way delays (s).

        Pairs with a satellite end and unreachable pairs (NaN or inf delay) are skipped.
        """
        src = np.asarray(src, np.int64)
        dst = np.asarray(dst, np.int64)
        delay = np.asarray(one_way_s, np.float64)
        n = self.bound.n_sats
        ok = (src >= n) & (dst >= n) & np.isfinite(delay)
        if not ok.any():
            return
        key = (src[ok] - n) * self.g + (dst[ok] - n)
        if self._bound_s is None:
            a, b = np.divmod(np.arange(self.g * self.g), self.g)
            self._bound_s = self.bound.one_way_s(a + n, b + n)
        stretch = delay[ok] / self._bound_s[key]
        np.add.at(self.steps, key, 1)
        np.add.at(self.sum, key, stretch)
        np.maximum.at(self.max, key, stretch)
        idx = np.minimum((stretch / self.BIN).astype(np.int64), self.hist.shape[0] - 1)
        self.hist += np.bincount(idx, minlength=self.hist.shape[0])

    def _percentile(self, q: float) -> float:
        total = int(self.hist.sum())
        if total == 0:
            return math.nan
        k = int(np.searchsorted(np.cumsum(self.hist), q / 100.0 * total, side="left"))
        return (k + 0.5) * self.BIN

    def summary(self, station_names) -> dict:
        """Pairs, median and p95 stretch over pair-steps, pairs above the flag, the worst."""
        seen = self.steps > 0
        out = {"pairs": int(seen.sum()), "flag": STRETCH_FLAG,
               "median_stretch": self._percentile(50), "p95_stretch": self._percentile(95),
               "flagged_pairs": int(np.count_nonzero(self.max[seen] > STRETCH_FLAG)),
               "flagged_pair_steps_pct": 100.0 * float(
                   self.hist[int(STRETCH_FLAG / self.BIN):].sum()) / max(int(self.hist.sum()), 1),
               "worst": None}
        if seen.any():
            k = int(np.argmax(np.where(seen, self.max, -1.0)))
            a, b = divmod(k, self.g)
            out["worst"] = {"src": str(station_names[a]), "dst": str(station_names[b]),
                            "stretch": float(self.max[k]),
                            "mean_stretch": float(self.sum[k] / self.steps[k]),
                            "bound_rtt_ms": float(2e3 * self._bound_s[k])}
        return out
