"""Walker delta and star shells as SGP4 element sets.

A shell ``i: T/P/F`` has ``P`` planes of ``S = T/P`` satellites. Plane ``p`` has right ascension
of the ascending node ``RAAN_p = raan_offset + p * 360/P`` (delta) or ``p * 180/P`` (star); slot
``s`` of plane ``p`` has argument of latitude ``u = s * 360/S + p * F * 360/T`` (plus half a slot
on odd planes when ``odd_plane_half_slot_shift``, Hypatia's ``phase_diff``).

Satellites are built with ``Satrec.sgp4init`` (WGS72, improved mode, zero drag, element epoch =
scenario epoch) so they propagate through the same SGP4 path as catalogue TLEs. The mean motion
is either given (``mean_motion_rev_per_day``, Kozai, as in a TLE and as Hypatia writes it) or
derived from ``altitude_km`` by Kepler's third law with WGS72 constants
(``a = R_EARTH_KM + altitude_km``).

Examples
--------
>>> from datetime import datetime, UTC
>>> from meshnet.orbits.config import ShellConfig
>>> shell = ShellConfig(altitude_km=630, inclination_deg=51.9, planes=34, sats_per_plane=34)
>>> c = walker_constellation([shell], datetime(2000, 1, 1, tzinfo=UTC))
>>> c.n, c.names[35], int(c.plane[35]), int(c.slot[35])
(1156, 'S0-P01-01', 1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from sgp4.api import WGS72, Satrec

from ..units import MU_EARTH_KM3_S2, R_EARTH_KM, SECONDS_PER_DAY
from .config import ShellConfig
from .constellation import Constellation, ShellInfo

#: Julian date of SGP4's element-epoch origin, 1949 December 31 00:00 UT.
_JD_SGP4_EPOCH0 = 2433281.5
_JD_UNIX_EPOCH = 2440587.5
_TAU = 2.0 * math.pi


def mean_motion_from_altitude(altitude_km: float) -> float:
    """Kepler mean motion in rev/day of a circular orbit ``altitude_km`` above R_EARTH_KM.

    Examples
    --------
    >>> round(mean_motion_from_altitude(550.0), 2)
    15.05
    """
    a_km = R_EARTH_KM + float(altitude_km)
    n_rad_s = math.sqrt(MU_EARTH_KM3_S2 / a_km**3)
    return n_rad_s * SECONDS_PER_DAY / _TAU


def altitude_from_mean_motion(mean_motion_rev_per_day: float) -> float:
    """Inverse of :func:`mean_motion_from_altitude` (Kepler, WGS72).

    Examples
    --------
    >>> round(altitude_from_mean_motion(mean_motion_from_altitude(630.0)), 6)
    630.0
    """
    n_rad_s = float(mean_motion_rev_per_day) * _TAU / SECONDS_PER_DAY
    return (MU_EARTH_KM3_S2 / n_rad_s**2) ** (1.0 / 3.0) - R_EARTH_KM


def sgp4_epoch_days(epoch: datetime) -> float:
    """``epoch`` as days since 1949-12-31 00:00 UTC (SGP4's ``sgp4init`` epoch)."""
    if epoch.tzinfo is None:
        epoch = epoch.replace(tzinfo=UTC)
    whole = datetime(1949, 12, 31, tzinfo=UTC)
    delta = epoch - whole
    return delta.days + (delta.seconds + delta.microseconds * 1e-6) / SECONDS_PER_DAY


def make_satrec(satnum: int, epoch: datetime, *, inclination_deg: float, raan_deg: float,
                eccentricity: float, arg_perigee_deg: float, mean_anomaly_deg: float,
                mean_motion_rev_per_day: float, bstar: float = 0.0) -> Satrec:
    """One SGP4 element set from mean elements (degrees, rev/day), WGS72, improved mode."""
    sat = Satrec()
    sat.sgp4init(
        WGS72, "i", int(satnum) % 100000, sgp4_epoch_days(epoch), float(bstar), 0.0, 0.0,
        float(eccentricity), math.radians(arg_perigee_deg % 360.0),
        math.radians(inclination_deg), math.radians(mean_anomaly_deg % 360.0),
        float(mean_motion_rev_per_day) * _TAU / 1440.0, math.radians(raan_deg % 360.0))
    return sat


def shell_elements(shell: ShellConfig) -> dict[str, np.ndarray]:
    """Mean elements of every satellite of ``shell`` in (plane, slot) order.

    Returns arrays ``plane``, ``slot``, ``raan_deg``, ``arg_latitude_deg`` (in [0, 360)),
    ``mean_anomaly_deg`` and the scalar ``mean_motion_rev_per_day``.
    """
    p_count, s_count = shell.planes, shell.sats_per_plane
    total = p_count * s_count
    plane = np.repeat(np.arange(p_count), s_count)
    slot = np.tile(np.arange(s_count), p_count)
    spread = 180.0 if shell.pattern == "star" else 360.0
    raan = (shell.raan_offset_deg + plane * (spread / p_count)) % 360.0
    u = slot * (360.0 / s_count) + plane * (shell.phasing * 360.0 / total)
    if shell.odd_plane_half_slot_shift:
        u = u + np.where(plane % 2 == 1, 180.0 / s_count, 0.0)
    u = u % 360.0
    if shell.mean_motion_rev_per_day is not None:
        n_rev_day = float(shell.mean_motion_rev_per_day)
    else:
        n_rev_day = mean_motion_from_altitude(shell.altitude_km)
    return {"plane": plane, "slot": slot, "raan_deg": raan, "arg_latitude_deg": u,
            "mean_anomaly_deg": (u - shell.arg_perigee_deg) % 360.0,
            "mean_motion_rev_per_day": n_rev_day}


def shell_satrecs(shell: ShellConfig, epoch: datetime, first_satnum: int = 1) -> list[Satrec]:
    """SGP4 element sets of one shell, plane-major (plane 0 slots 0..S-1, plane 1, ...)."""
    el = shell_elements(shell)
    return [make_satrec(first_satnum + k, epoch, inclination_deg=shell.inclination_deg,
                        raan_deg=el["raan_deg"][k], eccentricity=shell.eccentricity,
                        arg_perigee_deg=shell.arg_perigee_deg,
                        mean_anomaly_deg=el["mean_anomaly_deg"][k],
                        mean_motion_rev_per_day=el["mean_motion_rev_per_day"])
            for k in range(len(el["plane"]))]


def satellite_name(shell: int, plane: int, slot: int) -> str:
    """``S<shell>-P<plane:02>-<slot:02>``, e.g. ``S0-P03-05``."""
    return f"S{shell}-P{plane:02d}-{slot:02d}"


def walker_constellation(shells: Sequence[ShellConfig], epoch: datetime) -> Constellation:
    """Several Walker shells as one :class:`Constellation` (shell-major node ids)."""
    names, satrecs, shell_ix, plane, slot, infos = [], [], [], [], [], []
    for i, shell in enumerate(shells):
        el = shell_elements(shell)
        sats = shell_satrecs(shell, epoch, first_satnum=len(satrecs) + 1)
        satrecs.extend(sats)
        names.extend(satellite_name(i, int(p), int(s)) for p, s in zip(el["plane"], el["slot"],
                                                                        strict=True))
        shell_ix.append(np.full(len(sats), i))
        plane.append(el["plane"])
        slot.append(el["slot"])
        altitude = (shell.altitude_km if shell.mean_motion_rev_per_day is None
                    else altitude_from_mean_motion(shell.mean_motion_rev_per_day))
        infos.append(ShellInfo(name=shell.name or f"S{i}", altitude_km=float(altitude),
                               inclination_deg=float(shell.inclination_deg),
                               n_planes=shell.planes, sats_per_plane=shell.sats_per_plane,
                               pattern=shell.pattern, phasing=shell.phasing))
    return Constellation(names=np.array(names, dtype=object), satrecs=tuple(satrecs),
                         shell=np.concatenate(shell_ix), plane=np.concatenate(plane),
                         slot=np.concatenate(slot), shells=tuple(infos), source="walker")


def _tle_checksum(line: str) -> int:
    return sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68]) % 10


def format_tle_line2(satnum: int, *, inclination_deg: float, raan_deg: float,
                     eccentricity: float, arg_perigee_deg: float, mean_anomaly_deg: float,
                     mean_motion_rev_per_day: float, rev_number: int = 0) -> str:
    """Line 2 of a TLE with its checksum (the way Hypatia's satgenpy writes them).

    Examples
    --------
    >>> format_tle_line2(1, inclination_deg=51.9, raan_deg=0, eccentricity=1e-7,
    ...                  arg_perigee_deg=0, mean_anomaly_deg=0, mean_motion_rev_per_day=14.8)
    '2 00001  51.9000   0.0000 0000001   0.0000   0.0000 14.80000000    02'
    """
    ecc = f"{eccentricity:.7f}"[2:]
    body = (f"2 {satnum:05d} {inclination_deg:8.4f} {raan_deg % 360.0:8.4f} {ecc} "
            f"{arg_perigee_deg % 360.0:8.4f} {mean_anomaly_deg % 360.0:8.4f} "
            f"{mean_motion_rev_per_day:11.8f}{rev_number:5d}")
    return body + str(_tle_checksum(body))
