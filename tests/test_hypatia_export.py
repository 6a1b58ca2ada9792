"""``export-hypatia`` of meshnet's own scenarios: a complete Hypatia satellite-network folder,
read back by meshnet itself and compared."""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from meshnet.cli import main
from meshnet.errors import MeshnetError
from meshnet.io import hypatia_export as hx
from meshnet.io.hypatia_export import (
    export_hypatia_state,
    export_scenario_hypatia,
    grazing_isl_length_km,
    slant_range_km,
)
from meshnet.links.model import link_model, model_tables
from meshnet.links.reasons import ISL
from meshnet.orbits.hypatia import load_hypatia_dir
from meshnet.orbits.propagate import propagate
from meshnet.scenario import load_scenario
from meshnet.units import R_EARTH_KM
from meshnet.world import build_world

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: Worst case of TLE rounding (inclination, RAAN, argument of perigee and mean anomaly to
#: 1e-4 deg: 4 x 0.5e-4 deg x 7,000 km = 24 m; mean motion to 1e-8 rev/day: 0.2 m a day).
TLE_ROUNDING_KM = 0.025

SMALL = """
[scenario]
name = "tiny export"
epoch = 2026-03-01T06:00:00Z
duration_s = 30
step_s = 10
seed = 1

[[constellation.shells]]
altitude_km = 1200.0
inclination_deg = 53.0
planes = 8
sats_per_plane = 10
phasing = 3

[ground]
stations = "st.csv"
min_elevation_deg = 10.0

[links]
topology = "plus_grid"
"""

STATIONS = ("name,lat_deg,lon_deg\nNew York,40.7,-74.0\nLondon,51.5,-0.1\nTokyo,35.7,139.7\n"
            "Sydney,-33.9,151.2\n")


@pytest.fixture()
def small(tmp_path):
    (tmp_path / "st.csv").write_text(STATIONS)
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


@pytest.fixture()
def exported(small, tmp_path):
    sc = load_scenario(small)
    grid = sc.grid()
    res = export_scenario_hypatia(sc, grid, tmp_path / "net")
    return sc, grid, res


def test_round_trip(exported, tmp_path):
    sc, grid, res = exported
    out = res.path
    names = sorted(p.name for p in out.iterdir())
    assert names == ["description.txt", "dynamic_state_10000ms_for_30s", "ground_stations.txt",
                     "gsl_interfaces_info.txt", "isls.txt", "tles.txt"]
    assert (out / "tles.txt").read_text().splitlines()[:2] == ["8 10", "tiny_export 0"]
    world = build_world(sc)
    # The exported folder is a scenario of its own.
    back = load_scenario(out)
    assert back.run.epoch == sc.run.epoch
    wb = build_world(back)
    # Satellites: the same orbits within the TLE rounding.
    r0 = propagate(world.constellation, grid).r_km
    r1 = propagate(wb.constellation, back.grid(duration_s=30, step_s=10)).r_km
    err_km = np.linalg.norm(r0 - r1, axis=2).max()
    assert 0.0 < err_km < TLE_ROUNDING_KM
    # ISLs: the fixed candidate list of meshnet's own link model, in the same order.
    _, table = next(iter(model_tables(link_model(sc, grid, world), world.constellation, grid)))
    isl = table.kind == ISL
    np.testing.assert_array_equal(wb.hypatia.isls, np.stack([table.a[isl], table.b[isl]], 1))
    assert len(wb.hypatia.isls) == 8 * 10 * 2
    # Stations: names and positions (metres printed to 1e-6 m).
    assert wb.ground.names.tolist() == world.ground.names.tolist()
    np.testing.assert_allclose(wb.ground.r_km, world.ground.r_km, atol=1e-9, rtol=0)
    # description.txt: the slant range at the mask and the range cap.
    assert wb.hypatia.max_gsl_length_km == pytest.approx(slant_range_km(1200.0, 10.0))
    assert wb.hypatia.max_isl_length_km == pytest.approx(
        min(sc.links.max_range_km, grazing_isl_length_km(1200.0, sc.links.grazing_altitude_km)))
    assert (wb.hypatia.gsl_interfaces == 1).all() and (wb.hypatia.gsl_bandwidth == 1.0).all()
    # fstate: meshnet's Hypatia semantics on the re-read folder give the exported files.
    again = export_hypatia_state(wb.hypatia, r1, back.grid(duration_s=30, step_s=10),
                                 tmp_path / "again")
    for f in sorted(res.state_dir.iterdir()):
        assert (again / f.name).read_text() == f.read_text(), f.name
    assert len(list(again.iterdir())) == len(list(res.state_dir.iterdir())) == 6


def _fstate_tables(state_dir, n_nodes, n_sats, n_ground, t_list):
    """Replay Hypatia's incremental fstate files into full next-hop tables per step."""
    nh = np.full((n_nodes, n_ground), -2, np.int64)
    out = []
    for t in t_list:
        for line in (state_dir / f"fstate_{t}.txt").read_text().splitlines():
            cur, dst, nxt, _, _ = (int(x) for x in line.split(","))
            nh[cur, dst - n_sats] = nxt
        out.append(nh.copy())
    return out


def test_fstate_is_shortest_by_length(exported):
    """Independent reference: networkx on the folder's own geometry (ISLs always up, a GSL to
    every satellite within max_gsl_length_m, stations not relaying)."""
    sc, grid, res = exported
    net = load_hypatia_dir(res.path)
    n_s, n_g = net.constellation.n, net.ground.n
    r = propagate(net.constellation, grid).r_km
    tables = _fstate_tables(res.state_dir, n_s + n_g, n_s, n_g, grid.t_ns.tolist())
    reached = 0
    for k in range(len(grid)):
        g = nx.Graph()
        g.add_nodes_from(range(n_s + n_g))
        for a, b in net.isls.tolist():
            g.add_edge(a, b, w=float(np.linalg.norm(r[k, a] - r[k, b])))
        for j in range(n_g):
            d = np.linalg.norm(r[k] - net.ground.r_km[j], axis=1)
            for s in np.flatnonzero(d <= net.max_gsl_length_km):
                g.add_edge(n_s + j, int(s), w=float(d[s]))
        nh = tables[k]
        for j in range(n_g):
            dst = n_s + j
            sat_only = g.subgraph(list(range(n_s)) + [dst])
            dist = nx.single_source_dijkstra_path_length(sat_only, dst, weight="w")
            for u in range(n_s + n_g):
                if u == dst:
                    continue
                if u >= n_s:  # a station: its first hop, then satellites only
                    best = min((g[u][s]["w"] + dist[s] for s in g[u] if s < n_s and s in dist),
                               default=math.inf)
                else:
                    best = dist.get(u, math.inf)
                if not math.isfinite(best):
                    assert nh[u, j] == -1
                    continue
                # Follow the exported next hops and add up the lengths.
                length, v, hops = 0.0, u, 0
                while v != dst:
                    w = int(nh[v, j])
                    assert w >= 0 and hops < n_s + 2
                    length += g[v][w]["w"]
                    v, hops = w, hops + 1
                assert length == pytest.approx(best, abs=1e-6)
                reached += 1
    assert reached > 100


def test_dynamic_topology_fails_in_one_line(small, tmp_path, capsys):
    out = tmp_path / "dyn"
    rc = main(["export-hypatia", str(small), "--set", "links.topology=dynamic", "--out",
               str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "'dynamic'" in err and "plus_grid" in err and "cannot be exported" in err
    assert not out.exists()


def test_cli_prints_notes(small, tmp_path, capsys):
    rc = main(["export-hypatia", str(small), "--out", str(tmp_path / "net"), "-q"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "ISLs are always up" in text and "max_gsl_length_m" in text
    assert (tmp_path / "net" / "tles.txt").exists()


def test_nothing_half_written(small, tmp_path, monkeypatch):
    sc = load_scenario(small)
    out = tmp_path / "net"

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(hx, "hypatia_forwarding_state", boom)
    with pytest.raises(RuntimeError):
        export_scenario_hypatia(sc, sc.grid(), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.toml", "st.csv"]


def test_refuses_foreign_folder(small, tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    sc = load_scenario(small)
    with pytest.raises(MeshnetError, match="not an earlier Hypatia export"):
        export_scenario_hypatia(sc, sc.grid(), other)
    assert (other / "notes.txt").read_text() == "keep me"


def test_other_element_epochs_are_redated(small, tmp_path):
    """Satellites whose elements have another epoch (a catalogue) are written with the scenario
    epoch (ns-3's time zero) and still fly the same orbits."""
    from dataclasses import replace
    from datetime import timedelta

    from meshnet.orbits.walker import walker_constellation
    from meshnet.world import World

    sc = load_scenario(small)
    world = build_world(sc)
    earlier = walker_constellation(sc.constellation.shells, sc.run.epoch - timedelta(hours=3))
    moved = World(constellation=replace(world.constellation, satrecs=earlier.satrecs),
                  ground=world.ground)
    res = export_scenario_hypatia(sc, sc.grid(), tmp_path / "net", world=moved)
    assert res.n_redated == 80 and res.n_failed == 0
    net = load_hypatia_dir(res.path)
    assert {(s.jdsatepoch, s.jdsatepochF) for s in net.constellation.satrecs} == {
        (world.constellation.satrecs[0].jdsatepoch, world.constellation.satrecs[0].jdsatepochF)}
    r0 = propagate(moved.constellation, sc.grid()).r_km
    r1 = propagate(net.constellation, sc.grid()).r_km
    assert np.linalg.norm(r0 - r1, axis=2).max() < TLE_ROUNDING_KM
    assert res.max_position_error_km == pytest.approx(np.linalg.norm(r0 - r1, axis=2).max())


def test_redating_real_catalogue_elements():
    """On real TLEs (drag, other epochs): the same position at the new epoch, and after ten
    minutes within 0.2 km for every satellite above 300 km."""
    from meshnet.io.hypatia_export import _at_epoch
    from meshnet.orbits.tle import read_tle_file, records_to_satrecs

    path = DATA / "starlink_2026-02-23.tle"
    if not path.exists():
        pytest.skip(f"real catalogue not found at {path}")
    sats = records_to_satrecs(read_tle_file(path)[::40])
    jd0 = 2461095.0  # 2026-02-23 12:00 UTC
    n = 0
    for sat in sats:
        new, ok = _at_epoch(sat, jd0)
        if not ok:
            continue
        assert new.jdsatepoch + new.jdsatepochF == jd0
        for dt_day, tol_km in ((0.0, 1e-6), (10 / 1440, 0.2)):
            e0, r0, _ = sat.sgp4(jd0, dt_day)
            e1, r1, _ = new.sgp4(jd0, dt_day)
            if e0 == 0 and sat.altp * sat.radiusearthkm > 300.0:
                assert e1 == 0 and np.linalg.norm(np.subtract(r0, r1)) < tol_km
                n += 1
    assert n > 200


def test_slant_range_is_the_mask():
    """The satellite at max_gsl_length_m sits at the elevation mask (hand geometry)."""
    for h, e in ((550.0, 25.0), (630.0, 30.0), (1200.0, 10.0)):
        d = slant_range_km(h, e)
        r = R_EARTH_KM
        # Law of cosines in the Earth-centre / station / satellite triangle.
        cos_zenith = ((r + h) ** 2 - r * r - d * d) / (2 * r * d)
        assert math.degrees(math.asin(cos_zenith)) == pytest.approx(e, abs=1e-9)
    # Hypatia's own Kuiper-630 value (80 km grazing altitude).
    assert grazing_isl_length_km(630.0, 80.0) == pytest.approx(5442.958203036287, abs=1e-6)


def test_kuiper_630_hypatia_reproduces_satgenpys_directory(tmp_path):
    """Independent reference: the built-in kuiper_630_hypatia scenario (with Hypatia's own
    station file) exports to satgenpy's Kuiper-630 folder: tles.txt byte for byte (but the
    name), the same description, interfaces and ISL set, and the same next hops as the
    forwarding state of satgenpy's folder itself."""
    hyp = DATA / "hypatia_kuiper_630"
    if not hyp.exists():
        pytest.skip(f"Hypatia directory not found at {hyp}")
    from meshnet.scenario import apply_overrides

    sc = apply_overrides(load_scenario("kuiper_630_hypatia"),
                         [f"ground.stations={hyp / 'ground_stations.txt'}"])
    grid = sc.grid(duration_s=2, step_s=1)
    res = export_scenario_hypatia(sc, grid, tmp_path / "net")
    ours = (res.path / "tles.txt").read_text().replace("kuiper_630_hypatia ", "Kuiper-630 ")
    assert ours == (hyp / "tles.txt").read_text()
    for name in ("description.txt", "gsl_interfaces_info.txt", "ground_stations.txt"):
        assert (res.path / name).read_text() == (hyp / name).read_text(), name
    pairs = {tuple(line.split()) for line in (hyp / "isls.txt").read_text().splitlines()}
    assert {tuple(line.split()) for line in
            (res.path / "isls.txt").read_text().splitlines()} == pairs
    net = load_hypatia_dir(hyp)
    ref = export_hypatia_state(net, propagate(net.constellation, grid).r_km, grid,
                               tmp_path / "ref")
    for f in sorted(ref.iterdir()):
        if f.name.startswith("fstate_"):
            # Interface numbers follow each file's ISL order; the next hops must agree.
            hops = [line.rsplit(",", 2)[0] for line in f.read_text().splitlines()]
            ours = [line.rsplit(",", 2)[0]
                    for line in (res.state_dir / f.name).read_text().splitlines()]
            assert ours == hops, f.name
