"""Ground stations: names, geodetic coordinates and Earth-fixed (ITRS) positions.

Positions come from skyfield's WGS84 model (``wgs84.latlon(...).itrs_xyz``) unless the source
gives ECEF coordinates itself (Hypatia's extended ``ground_stations.txt``), which are then used
as they are so that link lengths match Hypatia's.

Station lists:

- ``"top100"``: the built-in list of the 100 largest metropolitan areas
  (``meshnet/data/ground_stations_top100.csv``; sources in its header).
- ``"none"``: no ground stations.
- a CSV file: optional header ``name,lat_deg,lon_deg[,elevation_m][,population]``, ``#``
  comments; without a header the columns are taken in that order.
- a Hypatia ``ground_stations.txt`` (``id,name,lat,lon,elevation[,x,y,z]``), detected by its
  integer first column.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import ScenarioError, quote_excerpt
from .config import GroundConfig
from .constellation import resolve_path

BUILTIN_STATIONS = {"top100": "ground_stations_top100.csv"}
_COLUMNS = ("name", "lat_deg", "lon_deg", "elevation_m", "population")


@dataclass(frozen=True)
class GroundStations:
    """G ground stations.

    Attributes
    ----------
    names : numpy.ndarray
        object (G,) unique names.
    lat_deg, lon_deg, elevation_m : numpy.ndarray
        float64 (G,) WGS84 geodetic coordinates.
    r_km : numpy.ndarray
        (G, 3) float64 ITRS (ECEF) positions.
    population : numpy.ndarray
        float64 (G,), NaN where unknown.
    """

    names: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    elevation_m: np.ndarray
    r_km: np.ndarray
    population: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "names", np.asarray(self.names, dtype=object).reshape(-1))
        g = self.names.shape[0]
        for key in ("lat_deg", "lon_deg", "elevation_m", "population"):
            arr = np.ascontiguousarray(getattr(self, key), dtype=np.float64).reshape(-1)
            if arr.shape != (g,):
                raise ValueError(f"GroundStations.{key} has shape {arr.shape}, expected ({g},)")
            object.__setattr__(self, key, arr)
        r = np.ascontiguousarray(self.r_km, dtype=np.float64).reshape(g, 3)
        object.__setattr__(self, "r_km", r)

    @property
    def n(self) -> int:
        """Number of stations."""
        return int(self.names.shape[0])

    def __len__(self) -> int:
        return self.n

    @classmethod
    def empty(cls) -> GroundStations:
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=object), z, z, z, np.zeros((0, 3)), z)

    @classmethod
    def from_geodetic(cls, names, lat_deg, lon_deg, elevation_m=None,
                      population=None) -> GroundStations:
        """Stations at WGS84 coordinates; ECEF from skyfield's ``wgs84``.

        Examples
        --------
        >>> g = GroundStations.from_geodetic(["Null Island"], [0.0], [0.0])
        >>> g.r_km.round(3).tolist()
        [[6378.137, 0.0, 0.0]]
        """
        lat = np.asarray(lat_deg, dtype=np.float64).reshape(-1)
        lon = np.asarray(lon_deg, dtype=np.float64).reshape(-1)
        elev = (np.zeros_like(lat) if elevation_m is None
                else np.asarray(elevation_m, dtype=np.float64).reshape(-1))
        pop = (np.full_like(lat, np.nan) if population is None
               else np.asarray(population, dtype=np.float64).reshape(-1))
        return cls(np.asarray(list(names), dtype=object), lat, lon, elev,
                   geodetic_to_ecef(lat, lon, elev), pop)

    def index_of(self, name: str) -> int:
        """Station index (0-based, not the node id) of ``name``."""
        hits = np.flatnonzero(self.names == name)
        if hits.size != 1:
            from ..errors import NodeNameError
            raise NodeNameError(f"no ground station named '{name}'" if hits.size == 0
                                else f"ground station name '{name}' is not unique")
        return int(hits[0])


def geodetic_to_ecef(lat_deg, lon_deg, elevation_m) -> np.ndarray:
    """(G, 3) ITRS km of WGS84 points, via skyfield's ``wgs84.latlon``."""
    from skyfield.api import wgs84

    lat = np.asarray(lat_deg, dtype=np.float64).reshape(-1)
    if lat.size == 0:
        return np.zeros((0, 3))
    pos = wgs84.latlon(lat, np.asarray(lon_deg, dtype=np.float64).reshape(-1),
                       elevation_m=np.asarray(elevation_m, dtype=np.float64).reshape(-1))
    return np.ascontiguousarray(np.asarray(pos.itrs_xyz.km, dtype=np.float64).reshape(3, -1).T)


def builtin_station_lists() -> list[str]:
    """Names accepted by ``[ground].stations`` besides a file path."""
    return [*BUILTIN_STATIONS, "none"]


def load_ground(cfg: GroundConfig, base_dir: Path | str | None = None) -> GroundStations:
    """The ground stations of a ``[ground]`` table.

    Examples
    --------
    >>> g = load_ground(GroundConfig())
    >>> g.n, g.names[0]
    (100, 'Tokyo')
    """
    spec = cfg.stations.strip()
    if spec == "none":
        return GroundStations.empty()
    if spec in BUILTIN_STATIONS:
        ref = resources.files("meshnet") / "data" / BUILTIN_STATIONS[spec]
        with resources.as_file(ref) as path:
            return read_ground_csv(path, display=f"built-in '{spec}' ({path.name})")
    path = resolve_path(spec, base_dir)
    _check_file(path, "ground-station CSV")
    if not path.is_file():
        raise ScenarioError(
            f"[ground].stations = '{spec}': no such file {path}; use one of "
            f"{', '.join(builtin_station_lists())} or a CSV path (relative to the scenario)")
    if _looks_like_hypatia(path):
        from .hypatia import read_ground_stations
        return read_ground_stations(path)
    return read_ground_csv(path)


def _check_file(path: Path, what: str) -> None:
    """Stat before open (a FIFO must not block), refuse binary data: one-line ScenarioError."""
    from ..config import check_input_file
    from ..errors import MeshnetError

    try:
        check_input_file(path, what, missing_ok=True)
    except MeshnetError as exc:
        raise ScenarioError(str(exc)) from None


def _looks_like_hypatia(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            first = text.split(",")[0].strip()
            return first.isdigit() and len(text.split(",")) in (5, 8)
    return False


def read_ground_csv(path: Path | str, display: str | None = None) -> GroundStations:
    """Read a ground-station CSV (``name,lat_deg,lon_deg[,elevation_m][,population]``).

    Errors name the file and the line: ``stations.csv:7: lat_deg 95.0 out of [-90, 90]``.
    """
    path = Path(path)
    where = display or str(path)
    names, lat, lon, elev, pop = [], [], [], [], []
    columns: tuple[str, ...] | None = None
    seen: dict[str, int] = {}
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{where}: cannot read ground stations ({exc.strerror})") from exc
    with fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            row = [c.strip() for c in row]
            if columns is None and row[0].lower() == "name":
                unknown = [c for c in row if c not in _COLUMNS]
                if unknown or row[:3] != ["name", "lat_deg", "lon_deg"]:
                    raise ScenarioError(
                        f"{where}:{lineno}: header must start name,lat_deg,lon_deg and may add "
                        f"elevation_m,population; found {quote_excerpt(','.join(row))}")
                columns = tuple(row)
                continue
            cols = columns or _COLUMNS[:len(row)]
            if not 3 <= len(row) <= len(columns or _COLUMNS) or (columns and len(row) !=
                                                                   len(columns)):
                raise ScenarioError(
                    f"{where}:{lineno}: expected {len(columns) if columns else '3 to 5'} fields "
                    f"({','.join(columns or _COLUMNS)}), found {len(row)}")
            rec = dict(zip(cols, row, strict=True))
            name = rec["name"]
            if not name:
                raise ScenarioError(f"{where}:{lineno}: empty station name")
            if name in seen:
                raise ScenarioError(f"{where}:{lineno}: duplicate station name "
                                    f"{quote_excerpt(name)} (first on line {seen[name]}); "
                                    "names must be unique")
            seen[name] = lineno
            values = {}
            for key in ("lat_deg", "lon_deg", "elevation_m", "population"):
                text = rec.get(key, "")
                if text == "":
                    values[key] = 0.0 if key == "elevation_m" else math.nan
                    if key in ("lat_deg", "lon_deg"):
                        raise ScenarioError(
                            f"{where}:{lineno}: missing {key} for {quote_excerpt(name)}")
                    continue
                try:
                    values[key] = float(text)
                except ValueError:
                    raise ScenarioError(f"{where}:{lineno}: {key} expected a number, found "
                                        f"{quote_excerpt(text)}") from None
                if not math.isfinite(values[key]):
                    raise ScenarioError(
                        f"{where}:{lineno}: {key} must be finite, found {quote_excerpt(text)}")
            if not -90.0 <= values["lat_deg"] <= 90.0:
                raise ScenarioError(f"{where}:{lineno}: lat_deg {values['lat_deg']} out of "
                                    "[-90, 90]; columns are name,lat_deg,lon_deg")
            if not -180.0 <= values["lon_deg"] <= 360.0:
                raise ScenarioError(f"{where}:{lineno}: lon_deg {values['lon_deg']} out of "
                                    "[-180, 360]")
            names.append(name)
            lat.append(values["lat_deg"])
            lon.append(values["lon_deg"])
            elev.append(values["elevation_m"])
            pop.append(values["population"])
    if not names:
        raise ScenarioError(f"{where}: no ground stations found; expected lines "
                            "name,lat_deg,lon_deg[,elevation_m][,population]")
    return GroundStations.from_geodetic(names, lat, lon, elev, pop)
