"""The positions dataset (Parquet) written in chunks."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow.parquet as pq

from meshnet.io.positions import write_positions
from meshnet.orbits.config import ShellConfig
from meshnet.orbits.propagate import ecef_to_geodetic, propagate
from meshnet.orbits.walker import walker_constellation
from meshnet.timegrid import TimeGrid

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def test_rows_values_and_atomic_write(tmp_path):
    c = walker_constellation([ShellConfig(altitude_km=550, inclination_deg=53, planes=3,
                                          sats_per_plane=4)], EPOCH)
    grid = TimeGrid.from_duration(EPOCH, 10.0, 0.5)
    out = tmp_path / "deep" / "p.parquet"
    rows = write_positions(out, c, grid, chunk_steps=3, progress=False)
    assert rows == 20 * 12
    assert sorted(p.name for p in out.parent.iterdir()) == ["p.parquet"]
    t = pq.read_table(out)
    assert t.column_names == ["t", "t_s", "sat", "name", "x_km", "y_km", "z_km", "lat_deg",
                              "lon_deg", "alt_km"]
    assert str(t.schema.field("t").type) == "timestamp[ns, tz=UTC]"
    d = t.to_pandas()
    orbits = propagate(c, grid)
    np.testing.assert_array_equal(d[["x_km", "y_km", "z_km"]].to_numpy(),
                                  orbits.r_km.reshape(-1, 3))
    lat, lon, alt = ecef_to_geodetic(orbits.r_km.reshape(-1, 3))
    np.testing.assert_array_equal(d["alt_km"].to_numpy(), alt)
    assert d["sat"].iloc[13] == 1 and d["name"].iloc[13] == "S0-P00-01"
    assert d["t_s"].iloc[12] == 0.5
    assert str(d["t"].iloc[12]) == "2026-01-01 00:00:00.500000+00:00"
