"""The small scenario many tests run: 144 satellites on +Grid, 3 stations, one all-reduce job.

One place for its text, so a change of the scenario schema is made once.
"""

from __future__ import annotations

STATIONS = "name,lat_deg,lon_deg,population\nA,40,-74,20e6\nB,51.5,0,14e6\nC,35.7,139.7,37e6\n"

_SMALL = """
[scenario]
name = "{name}"
epoch = 2026-02-23T00:00:00Z
duration_s = {duration_s}
step_s = 2
seed = 5

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
phasing = 5

[ground]
stations = "st.csv"
min_elevation_deg = 10.0
antennas = 2

[links]
topology = "plus_grid"
capacity_bps = 100e9
acquisition_s = 10

[traffic.compute]
placement = "block"
shell = 0
plane_count = 2
slot_count = 3

[[traffic.jobs]]
name = "job"
kind = "allreduce"
model_params = 1e9
compute_s = 1.0
"""

_BACKGROUND = """
[traffic.background]
total_offered_bps = 30e9
"""


def small_toml(duration_s: int = 40, name: str = "small", background: bool = True) -> str:
    """The scenario's TOML text (it reads its stations from ``st.csv`` beside it)."""
    return _SMALL.format(name=name, duration_s=duration_s) + (_BACKGROUND if background else "")
