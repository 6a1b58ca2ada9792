"""A tiny run shared by the viewer tests (tests/test_view.py, tests/test_view_browser.py)."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import numpy as np

TINY = """
[scenario]
name = "tiny_view"
epoch = 2026-02-23T00:00:00Z
duration_s = 60
step_s = 4
seed = 3

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 10
sats_per_plane = 10
phasing = 3

[ground]
stations = "st.csv"
min_elevation_deg = 10.0
antennas = 2

[links]
topology = "plus_grid"
capacity_bps = 100e9
acquisition_s = 8
sun_exclusion_deg = 20.0

[traffic.compute]
placement = "block"
shell = 0
plane_count = 2
slot_count = 2

[[traffic.jobs]]
name = "job"
kind = "allreduce"
model_params = 1e9
compute_s = 1.0

[traffic.background]
total_offered_bps = 30e9
"""

STATIONS = ("name,lat_deg,lon_deg,population\nNew York,40.7,-74,20e6\nLondon,51.5,-0.1,14e6\n"
            "Tokyo,35.7,139.7,37e6\nSao Paulo,-23.5,-46.6,22e6\n")


#: The same without training jobs (background traffic only).
NO_JOBS = TINY.split("[traffic.compute]")[0] + "[traffic.background]\ntotal_offered_bps = 30e9\n"


def make_run(folder: Path, *extra: str, text: str = TINY) -> Path:
    """Run the tiny scenario with ``meshnet run --view`` into ``folder/run``; return it."""
    from meshnet.cli import main

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "st.csv").write_text(STATIONS)
    (folder / "tiny.toml").write_text(text)
    out = folder / "run"
    code = main(["run", str(folder / "tiny.toml"), "--out", str(out), "-q", "--no-plots",
                 "--view", *extra])
    assert code == 0
    return out


def page_payload(path: Path) -> dict:
    """The JSON object embedded in a view.html."""
    text = Path(path).read_text(encoding="utf-8")
    m = re.search(r'<script id="meshdata" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def unpack(b64: str, dtype) -> np.ndarray:
    """Decode one packed array of the page (base64 of gzip of little-endian values)."""
    return np.frombuffer(gzip.decompress(base64.b64decode(b64)), dtype=dtype)


def undelta(arr: np.ndarray, frames: int) -> np.ndarray:
    """Undo the per-pair frame-to-frame differences (mod 2**16) of the uint16 arrays."""
    a = arr.astype(np.int64).reshape(-1, frames)
    return (np.cumsum(a, axis=1) % 65536).astype(np.uint16)
