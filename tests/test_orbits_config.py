"""[constellation] and [ground] tables, load_constellation / load_ground, ground CSV errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from skyfield.api import wgs84

from meshnet.config import parse_table
from meshnet.errors import ScenarioError, TLEError
from meshnet.orbits.config import ConstellationConfig, GroundConfig, ShellConfig
from meshnet.orbits.constellation import Constellation, load_constellation
from meshnet.orbits.ground import load_ground, read_ground_csv

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SHELL = {"altitude_km": 550, "inclination_deg": 53, "planes": 4, "sats_per_plane": 5}


def _cons(table):
    return parse_table(ConstellationConfig, table, "constellation", "s.toml")


def test_exactly_one_source():
    with pytest.raises(ScenarioError, match=r"s.toml: \[constellation\] needs one source"):
        _cons({})
    with pytest.raises(ScenarioError, match="has several sources"):
        _cons({"shells": [SHELL], "tle_file": "x.tle"})
    both = _cons({"shells": [SHELL], "cluster": {"n_sats": 7}})
    c = load_constellation(both, EPOCH)
    assert c.n == 27 and c.source == "mixed" and c.cluster_pairs.min() >= 20


def test_shell_errors():
    with pytest.raises(ScenarioError, match="needs altitude_km or mean_motion_rev_per_day"):
        _cons({"shells": [{k: v for k, v in SHELL.items() if k != "altitude_km"}]})
    with pytest.raises(ScenarioError, match=r"unknown key \[constellation.shells\[0\]\].plane; "
                                            r"did you mean 'planes'\?"):
        _cons({"shells": [{**SHELL, "plane": 3}]})
    with pytest.raises(ScenarioError, match=r"phasing must be < planes \(4\), found 4"):
        _cons({"shells": [{**SHELL, "phasing": 4}]})
    with pytest.raises(ScenarioError, match=r"pattern = 'delt' is not known; did you mean"):
        _cons({"shells": [{**SHELL, "pattern": "delt"}]})
    with pytest.raises(ScenarioError, match="spacing_min_km .* must not exceed spacing_max_km"):
        _cons({"cluster": {"spacing_min_km": 0.3}})


def test_relative_paths_resolve_against_scenario_dir(tmp_path):
    if not (DATA / "starlink_2026-02-23.tle").exists():
        pytest.skip("real catalogue not found")
    text = (DATA / "starlink_2026-02-23.tle").read_text().splitlines()[:30]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "few.tle").write_text("\n".join(text) + "\n")
    cfg = _cons({"tle_file": "sub/few.tle", "infer_planes": False})
    c = load_constellation(cfg, EPOCH, base_dir=tmp_path)
    assert c.n == 10 and c.names[0] == "STARLINK-1008"
    with pytest.raises(TLEError, match="cannot read TLE file"):
        load_constellation(cfg, EPOCH, base_dir=tmp_path / "elsewhere")


def test_hypatia_dir_source():
    if not (DATA / "hypatia_kuiper_630").exists():
        pytest.skip("Hypatia directory not found")
    c = load_constellation(_cons({"hypatia_dir": "hypatia_kuiper_630"}), EPOCH, base_dir=DATA)
    assert c.n == 1156 and len(c.static_isls) == 2312 and c.max_gsl_length_km == 1260.0


def test_concat_shifts_ids():
    a = load_constellation(ConstellationConfig(shells=(ShellConfig(**SHELL),)), EPOCH)
    b = Constellation(names=np.array(["x", "y"], dtype=object), satrecs=a.satrecs[:2],
                      shell=[0, 0], plane=[0, 0], slot=[0, 1], static_isls=[[0, 1]])
    c = Constellation.concat(a, b)
    assert c.n == 22 and c.static_isls.tolist() == [[20, 21]] and c.shell[-1] == 1


def test_builtin_top100():
    g = load_ground(GroundConfig())
    assert g.n == 100 and len(set(g.names.tolist())) == 100
    assert g.r_km.shape == (100, 3) and np.isfinite(g.population).all()
    assert (np.diff(g.population) <= 0).all()
    ref = wgs84.latlon(g.lat_deg, g.lon_deg, elevation_m=g.elevation_m).itrs_xyz.km.T
    np.testing.assert_allclose(g.r_km, ref, atol=1e-9)
    assert load_ground(GroundConfig(stations="none")).n == 0


def test_ground_config_ranges():
    with pytest.raises(ScenarioError, match=r"\[ground\].min_elevation_deg must be <= 90"):
        parse_table(GroundConfig, {"min_elevation_deg": 95}, "ground", "s.toml")
    with pytest.raises(ScenarioError, match=r"\[ground\].antennas must be >= 1"):
        parse_table(GroundConfig, {"antennas": 0}, "ground", "s.toml")


def test_ground_csv(tmp_path):
    p = tmp_path / "gs.csv"
    p.write_text("# my stations\nname,lat_deg,lon_deg\nZurich,47.37,8.54\nQuito,-0.18,-78.47\n")
    g = load_ground(GroundConfig(stations="gs.csv"), tmp_path)
    assert g.names.tolist() == ["Zurich", "Quito"] and np.isnan(g.population).all()
    q = tmp_path / "plain.csv"
    q.write_text("A,1.0,2.0,100,5e6\nB,3,4\n")
    g2 = read_ground_csv(q)
    assert g2.elevation_m.tolist() == [100.0, 0.0] and g2.population[0] == 5e6


@pytest.mark.parametrize("text,message", [
    ("name,lat_deg,lon_deg\nA,95,0\n", r"gs.csv:2: lat_deg 95.0 out of \[-90, 90\]"),
    ("name,lat_deg,lon_deg\nA,north,0\n", r"gs.csv:2: lat_deg expected a number, found 'north'"),
    ("A,1,2\nB,1\n", r"gs.csv:2: expected 3 to 5 fields"),
    ("name,lat_deg,lon_deg\nA,1,2\n\nA,3,4\n", r"gs.csv:4: duplicate station name 'A' \(first "
                                               r"on line 2\)"),
    ("name,lat,lon\nA,1,2\n", r"gs.csv:1: header must start name,lat_deg,lon_deg"),
    ("# nothing\n", r"gs.csv: no ground stations found"),
])
def test_bad_ground_csv(tmp_path, text, message):
    p = tmp_path / "gs.csv"
    p.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_ground(GroundConfig(stations=str(p)))


def test_missing_station_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"stations = 'nope.csv': no such file .*; use one of "
                                            r"top100, none"):
        load_ground(GroundConfig(stations="nope.csv"), tmp_path)


def test_hypatia_ground_file_detected():
    path = DATA / "hypatia_kuiper_630" / "ground_stations.txt"
    if not path.exists():
        pytest.skip("Hypatia directory not found")
    g = load_ground(GroundConfig(stations=str(path)))
    assert g.n == 100 and g.r_km[0, 0] == pytest.approx(-3954.843592378)
