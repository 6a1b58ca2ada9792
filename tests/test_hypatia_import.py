"""Hypatia satellite-network directory import."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from meshnet.errors import HypatiaFormatError
from meshnet.orbits.hypatia import load_hypatia_dir, read_ground_stations

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HYPATIA = DATA / "hypatia_kuiper_630"


@pytest.fixture(scope="module")
def net():
    if not HYPATIA.exists():
        pytest.skip(f"Hypatia directory not found at {HYPATIA}")
    return load_hypatia_dir(HYPATIA)


def test_counts(net):
    c = net.constellation
    assert c.n == 1156 and len(net.isls) == 2312 and net.ground.n == 100
    assert net.isls.dtype == np.int32 and net.isls.shape == (2312, 2)
    assert c.static_isls is not None and len(c.static_isls) == 2312
    assert c.shells[0].n_planes == 34 and c.shells[0].sats_per_plane == 34
    assert c.plane[35] == 1 and c.slot[35] == 1
    assert net.max_gsl_length_km == pytest.approx(1260.0)
    assert net.max_isl_length_km == pytest.approx(5442.9582030362869)
    assert c.max_gsl_length_km == net.max_gsl_length_km
    assert net.gsl_interfaces.shape == (1256,) and (net.gsl_interfaces == 1).all()
    # +Grid: the first ISLs in the file
    assert net.isls[:2].tolist() == [[0, 1], [0, 34]]


def test_ground_uses_file_coordinates(net):
    lines = (HYPATIA / "ground_stations.txt").read_text().splitlines()
    xyz = np.array([[float(v) for v in line.split(",")[5:8]] for line in lines]) / 1000.0
    np.testing.assert_array_equal(net.ground.r_km, xyz)
    assert net.ground.names[0] == "Tokyo"
    assert net.ground.lat_deg[0] == pytest.approx(35.6895)


def test_basic_format_matches_extended(tmp_path):
    if not HYPATIA.exists():
        pytest.skip("Hypatia directory not found")
    lines = (HYPATIA / "ground_stations.txt").read_text().splitlines()
    basic = tmp_path / "ground_stations.txt"
    basic.write_text("\n".join(",".join(line.split(",")[:5]) for line in lines) + "\n")
    g = read_ground_stations(basic)
    ext = read_ground_stations(HYPATIA / "ground_stations.txt")
    # Hypatia computes ECEF with the WGS72 ellipsoid; so do we for basic files (the file's
    # lat/lon are rounded to 1e-6 deg, about 0.1 m)
    assert np.abs(g.r_km - ext.r_km).max() < 1e-3


def _copy(tmp_path):
    if not HYPATIA.exists():
        pytest.skip("Hypatia directory not found")
    d = tmp_path / "net"
    shutil.copytree(HYPATIA, d)
    return d


def test_bad_header(tmp_path):
    d = _copy(tmp_path)
    text = (d / "tles.txt").read_text().splitlines()
    (d / "tles.txt").write_text("\n".join(["34 35"] + text[1:]) + "\n")
    with pytest.raises(HypatiaFormatError, match=r"tles.txt:1: header promises 34 x 35 = 1190"):
        load_hypatia_dir(d)
    (d / "tles.txt").write_text("\n".join(["34"] + text[1:]) + "\n")
    with pytest.raises(HypatiaFormatError, match=r"tles.txt:1: header must be"):
        load_hypatia_dir(d)


def test_bad_tle_line_number(tmp_path):
    d = _copy(tmp_path)
    text = (d / "tles.txt").read_text().splitlines()
    text[5] = text[5][:-1] + str((int(text[5][-1]) + 1) % 10)
    (d / "tles.txt").write_text("\n".join(text) + "\n")
    with pytest.raises(HypatiaFormatError, match=r"tles.txt:6: bad checksum on TLE line 1"):
        load_hypatia_dir(d)


def test_bad_isl_and_ground_lines(tmp_path):
    d = _copy(tmp_path)
    isl = (d / "isls.txt").read_text().splitlines()
    (d / "isls.txt").write_text("\n".join(isl[:9] + ["12 1156"] + isl[10:]) + "\n")
    with pytest.raises(HypatiaFormatError, match=r"isls.txt:10: satellite id 1156 out of range"):
        load_hypatia_dir(d)
    (d / "isls.txt").write_text("\n".join(isl[:3] + ["12 x"]) + "\n")
    with pytest.raises(HypatiaFormatError, match=r"isls.txt:4: expected '<sat_a> <sat_b>'"):
        load_hypatia_dir(d)
    shutil.copy(HYPATIA / "isls.txt", d / "isls.txt")
    gs = (d / "ground_stations.txt").read_text().splitlines()
    gs[2] = "2,Shanghai,121.458060,0.000000"
    (d / "ground_stations.txt").write_text("\n".join(gs) + "\n")
    with pytest.raises(HypatiaFormatError, match=r"ground_stations.txt:3: expected 5 fields"):
        load_hypatia_dir(d)
    gs[2] = "2,Shanghai,north,121.458060,0.000000,1,2,3"
    (d / "ground_stations.txt").write_text("\n".join(gs) + "\n")
    with pytest.raises(HypatiaFormatError, match=r"ground_stations.txt:3: lat, lon, elevation"):
        load_hypatia_dir(d)


def test_not_a_directory(tmp_path):
    with pytest.raises(HypatiaFormatError, match="not a directory"):
        load_hypatia_dir(tmp_path / "nope")
