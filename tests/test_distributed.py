"""Time-window splitting gives the single-process link dataset."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow.parquet as pq
import pytest

from meshnet.distributed import window_bounds, windowed_link_tables
from meshnet.io.links_dataset import write_links_dataset
from meshnet.scenario import parse_scenario

SCENARIO = """
[scenario]
name = "w"
epoch = 2026-02-23T00:00:00Z
duration_s = 120
step_s = 2
seed = 1

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
phasing = 5

[ground]
stations = "none"

[links]
topology = "plus_grid"
acquisition_s = 10
sun_exclusion_deg = 15
"""


def test_window_bounds_cover_every_step_once():
    for n, w in ((10, 3), (7, 7), (5, 9), (1000, 16)):
        b = window_bounds(n, w)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(x[1] == y[0] for x, y in zip(b[:-1], b[1:], strict=True))


@pytest.mark.parametrize("n_windows", [3, 7])
def test_windows_reproduce_single_process_dataset(tmp_path, n_windows):
    sc = parse_scenario(SCENARIO)
    grid = sc.grid()
    single = write_links_dataset(sc, grid, tmp_path / "one", progress=False)
    with ThreadPoolExecutor(2) as ex:
        split = write_links_dataset(
            sc, grid, tmp_path / "split", progress=False,
            tables=windowed_link_tables(sc, grid, ex, n_windows))
    a = pq.read_table(tmp_path / "one" / "links.parquet").to_pandas()
    b = pq.read_table(tmp_path / "split" / "links.parquet").to_pandas()
    for col in ("t_s", "a", "b", "kind", "state", "reason"):
        assert (a[col].astype(str) == b[col].astype(str)).all(), col
    # Interpolated propagation restarts at window edges: lengths agree to millimetres.
    np.testing.assert_allclose(a["length_km"], b["length_km"], atol=1e-5)
    for key, value in single.mesh.items():
        if isinstance(value, float):
            assert split.mesh[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
        elif key != "created_utc":
            assert split.mesh[key] == value, key
