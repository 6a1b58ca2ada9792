"""A small scenario for the routing-research tests (144 satellites, 3 stations, one job)."""

from __future__ import annotations

SMALL = """
[scenario]
name = "small"
epoch = 2026-02-23T00:00:00Z
duration_s = 20
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

[traffic.background]
total_offered_bps = 30e9
"""

STATIONS = "name,lat_deg,lon_deg,population\nA,40,-74,20e6\nB,51.5,0,14e6\nC,35.7,139.7,37e6\n"


def write_small(tmp_path, extra: str = "", routing: str = "") -> object:
    """``small.toml`` (and its stations) in ``tmp_path``; ``routing`` is put in [routing]."""
    (tmp_path / "st.csv").write_text(STATIONS)
    text = SMALL
    if routing:
        text += "\n[routing]\n" + routing + "\n"
    path = tmp_path / "small.toml"
    path.write_text(text + extra)
    return path
