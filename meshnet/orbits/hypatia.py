"""Import a Hypatia satellite-network directory (the layout snkas/hypatia's satgenpy writes).

Files read:

- ``tles.txt``: header ``<n_orbits> <n_sats_per_orbit>`` then 3-line TLEs; satellite id =
  order in the file (plane = id // n_sats_per_orbit, slot = id % n_sats_per_orbit).
- ``isls.txt``: one undirected ISL per line, ``<sat_a> <sat_b>``.
- ``ground_stations.txt``: basic ``id,name,lat_deg,lon_deg,elevation_m`` or extended
  ``...,x_m,y_m,z_m``. Extended files' ECEF coordinates are used as given; for basic files they
  are computed the way Hypatia does (WGS72 ellipsoid), so link lengths agree with Hypatia's.
- ``description.txt``: ``max_gsl_length_m=...`` and ``max_isl_length_m=...``.
- ``gsl_interfaces_info.txt`` (optional): ``node_id,n_gsl_interfaces,aggregate_max_bandwidth``.

Node ids follow Hypatia: satellites ``0..N-1``, then ground station ``g`` is node ``N + g``.
Every error names the file and the line.

Examples
--------
>>> net = load_hypatia_dir("../shared/data/hypatia_kuiper_630")  # doctest: +SKIP
>>> net.constellation.n, len(net.isls), net.ground.n  # doctest: +SKIP
(1156, 2312, 100)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HypatiaFormatError, TLEError
from .constellation import Constellation, ShellInfo
from .ground import GroundStations

#: Hypatia's ellipsoid for basic ground-station files (WGS72).
_WGS72_A_M = 6378135.0
_WGS72_F = 1.0 / 298.26


@dataclass(frozen=True)
class HypatiaNetwork:
    """A parsed Hypatia directory.

    ``gsl_interfaces`` and ``gsl_bandwidth`` are per node (satellites then ground stations),
    or None when ``gsl_interfaces_info.txt`` is absent.
    """

    constellation: Constellation
    ground: GroundStations
    isls: np.ndarray
    max_gsl_length_km: float | None
    max_isl_length_km: float | None
    path: Path
    gsl_interfaces: np.ndarray | None = None
    gsl_bandwidth: np.ndarray | None = None


def _lines(path: Path):
    from ..config import check_input_file
    from ..errors import MeshnetError

    try:  # stat before open: a FIFO must not block; binary data is refused
        check_input_file(path, "Hypatia file", missing_ok=True)
    except MeshnetError as exc:
        raise HypatiaFormatError(str(exc)) from None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HypatiaFormatError(f"{path}: cannot read ({exc.strerror}); a Hypatia directory "
                                 "needs tles.txt, isls.txt, ground_stations.txt and "
                                 "description.txt") from exc
    return text.splitlines()


def read_hypatia_tles(path: Path | str) -> tuple[Constellation, int, int]:
    """Satellites of a Hypatia ``tles.txt``; returns (constellation, n_orbits, n_per_orbit)."""
    from .tle import parse_tle_lines, records_to_satrecs
    from .walker import altitude_from_mean_motion

    path = Path(path)
    lines = _lines(path)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise HypatiaFormatError(f"{path}:1: empty file; expected '<n_orbits> "
                                 "<n_sats_per_orbit>' then 3-line TLEs")
    parts = lines[first].split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise HypatiaFormatError(f"{path}:{first + 1}: header must be '<n_orbits> "
                                 f"<n_sats_per_orbit>', found '{lines[first].strip()[:40]}'")
    n_orbits, n_per = int(parts[0]), int(parts[1])
    try:
        records = parse_tle_lines(lines[first + 1:], str(path), first_lineno=first + 2)
    except TLEError as exc:
        raise HypatiaFormatError(str(exc)) from None
    expected = n_orbits * n_per
    if len(records) != expected:
        raise HypatiaFormatError(f"{path}:{first + 1}: header promises {n_orbits} x {n_per} = "
                                 f"{expected} satellites, the file holds {len(records)}")
    sats = records_to_satrecs(records, str(path))
    ids = np.arange(expected)
    names = np.array([r.name for r in records], dtype=object)
    if len(set(names.tolist())) != len(names):
        names = np.array([f"{r.name} [{k}]" for k, r in enumerate(records)], dtype=object)
    mm = sats[0].no_kozai * 1440.0 / (2.0 * math.pi) if sats else 0.0
    info = ShellInfo(name=records[0].name.rsplit(" ", 1)[0] if records else "hypatia",
                     altitude_km=float(altitude_from_mean_motion(mm)) if sats else 0.0,
                     inclination_deg=float(np.degrees(sats[0].inclo)) if sats else 0.0,
                     n_planes=n_orbits, sats_per_plane=n_per, pattern="delta", phasing=0)
    const = Constellation(names=names, satrecs=tuple(sats), shell=np.zeros(expected),
                          plane=ids // max(n_per, 1), slot=ids % max(n_per, 1), shells=(info,),
                          source="hypatia")
    return const, n_orbits, n_per


def read_isls(path: Path | str, n_sats: int) -> np.ndarray:
    """(L, 2) int32 undirected ISLs of a Hypatia ``isls.txt``."""
    path = Path(path)
    pairs = []
    seen: dict[tuple[int, int], int] = {}
    for lineno, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise HypatiaFormatError(f"{path}:{lineno}: expected '<sat_a> <sat_b>' (two "
                                     f"satellite ids), found '{text[:40]}'")
        a, b = int(parts[0]), int(parts[1])
        for x in (a, b):
            if x >= n_sats:
                raise HypatiaFormatError(f"{path}:{lineno}: satellite id {x} out of range "
                                         f"(tles.txt has {n_sats} satellites, ids 0..{n_sats - 1})")
        if a == b:
            raise HypatiaFormatError(f"{path}:{lineno}: ISL from satellite {a} to itself")
        key = (min(a, b), max(a, b))
        if key in seen:
            raise HypatiaFormatError(f"{path}:{lineno}: duplicate ISL {a}-{b} (first on line "
                                     f"{seen[key]})")
        seen[key] = lineno
        pairs.append((a, b))
    return np.array(pairs, dtype=np.int32).reshape(-1, 2)


def _wgs72_ecef_km(lat_deg, lon_deg, elevation_m) -> np.ndarray:
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    e2 = _WGS72_F * (2.0 - _WGS72_F)
    n_curv = _WGS72_A_M / np.sqrt(1.0 - e2 * np.sin(lat) ** 2)
    h = np.asarray(elevation_m, dtype=np.float64)
    xyz = np.stack([(n_curv + h) * np.cos(lat) * np.cos(lon),
                    (n_curv + h) * np.cos(lat) * np.sin(lon),
                    (n_curv * (1.0 - e2) + h) * np.sin(lat)], axis=-1)
    return xyz / 1000.0


def read_ground_stations(path: Path | str) -> GroundStations:
    """Stations of a Hypatia ``ground_stations.txt`` (basic or extended format)."""
    path = Path(path)
    names, lat, lon, elev, xyz = [], [], [], [], []
    n_fields = None
    for lineno, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = [p.strip() for p in text.split(",")]
        if len(parts) not in (5, 8):
            raise HypatiaFormatError(
                f"{path}:{lineno}: expected 5 fields (id,name,lat_deg,lon_deg,elevation_m) or 8 "
                f"(... ,x_m,y_m,z_m), found {len(parts)}")
        if n_fields is not None and len(parts) != n_fields:
            raise HypatiaFormatError(f"{path}:{lineno}: {len(parts)} fields where earlier lines "
                                     f"have {n_fields}; use one format for the whole file")
        n_fields = len(parts)
        if not parts[0].isdigit() or int(parts[0]) != len(names):
            raise HypatiaFormatError(f"{path}:{lineno}: station id must be {len(names)} "
                                     f"(ids count up from 0), found '{parts[0]}'")
        try:
            vals = [float(p) for p in parts[2:]]
        except ValueError:
            raise HypatiaFormatError(f"{path}:{lineno}: lat, lon, elevation (and x, y, z) must "
                                     f"be numbers, found '{','.join(parts[2:])}'") from None
        if not -90.0 <= vals[0] <= 90.0 or not -180.0 <= vals[1] <= 360.0:
            raise HypatiaFormatError(f"{path}:{lineno}: latitude {vals[0]} / longitude "
                                     f"{vals[1]} out of range")
        names.append(parts[1])
        lat.append(vals[0])
        lon.append(vals[1])
        elev.append(vals[2])
        if n_fields == 8:
            xyz.append(vals[3:6])
    if not names:
        raise HypatiaFormatError(f"{path}: no ground stations")
    if len(set(names)) != len(names):
        names = [f"{n} [{k}]" for k, n in enumerate(names)]
    r_km = (np.array(xyz, dtype=np.float64) / 1000.0 if xyz
            else _wgs72_ecef_km(np.array(lat), np.array(lon), np.array(elev)))
    return GroundStations(np.array(names, dtype=object), np.array(lat), np.array(lon),
                          np.array(elev), r_km, np.full(len(names), np.nan))


def read_description(path: Path | str) -> dict[str, float]:
    """``key=value`` numbers of a Hypatia ``description.txt``."""
    path = Path(path)
    out: dict[str, float] = {}
    for lineno, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if "=" not in text:
            raise HypatiaFormatError(f"{path}:{lineno}: expected key=value, found '{text[:40]}'")
        key, value = (s.strip() for s in text.split("=", 1))
        try:
            out[key] = float(value)
        except ValueError:
            raise HypatiaFormatError(f"{path}:{lineno}: {key} expected a number, found "
                                     f"'{value}'") from None
    return out


def read_gsl_interfaces(path: Path | str, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-node GSL interface count and aggregate bandwidth from ``gsl_interfaces_info.txt``."""
    path = Path(path)
    count = np.zeros(n_nodes, dtype=np.int32)
    bandwidth = np.zeros(n_nodes, dtype=np.float64)
    seen = 0
    for lineno, line in enumerate(_lines(path), start=1):
        text = line.strip()
        if not text:
            continue
        parts = [p.strip() for p in text.split(",")]
        try:
            node, k, bw = int(parts[0]), int(parts[1]), float(parts[2])
            if len(parts) != 3:
                raise ValueError
        except (ValueError, IndexError):
            raise HypatiaFormatError(f"{path}:{lineno}: expected node_id,n_gsl_interfaces,"
                                     f"aggregate_max_bandwidth, found '{text[:40]}'") from None
        if node != seen or node >= n_nodes:
            raise HypatiaFormatError(f"{path}:{lineno}: node id must be {seen} (0..{n_nodes - 1}"
                                     f" in order: satellites then ground stations), found {node}")
        count[node], bandwidth[node] = k, bw
        seen += 1
    if seen != n_nodes:
        raise HypatiaFormatError(f"{path}: {seen} nodes listed, expected {n_nodes} "
                                 "(satellites + ground stations)")
    return count, bandwidth


def load_hypatia_dir(path: Path | str) -> HypatiaNetwork:
    """Parse a Hypatia satellite-network directory.

    Raises
    ------
    HypatiaFormatError
        A file is missing or malformed (the message names the file and line).
    """
    path = Path(path)
    if not path.is_dir():
        raise HypatiaFormatError(f"{path}: not a directory; hypatia_dir must name a Hypatia "
                                 "satellite-network folder (with tles.txt, isls.txt, ...)")
    const, _, _ = read_hypatia_tles(path / "tles.txt")
    isls = read_isls(path / "isls.txt", const.n)
    ground = read_ground_stations(path / "ground_stations.txt")
    desc_path = path / "description.txt"
    desc = read_description(desc_path) if desc_path.exists() else {}
    max_gsl = desc.get("max_gsl_length_m")
    max_isl = desc.get("max_isl_length_m")
    max_gsl_km = max_gsl / 1000.0 if max_gsl is not None else None
    max_isl_km = max_isl / 1000.0 if max_isl is not None else None
    gsl_path = path / "gsl_interfaces_info.txt"
    count = bw = None
    if gsl_path.exists():
        count, bw = read_gsl_interfaces(gsl_path, const.n + ground.n)
    from dataclasses import replace
    const = replace(const, static_isls=isls, max_isl_length_km=max_isl_km,
                    max_gsl_length_km=max_gsl_km)
    return HypatiaNetwork(constellation=const, ground=ground, isls=isls,
                          max_gsl_length_km=max_gsl_km, max_isl_length_km=max_isl_km, path=path,
                          gsl_interfaces=count, gsl_bandwidth=bw)
