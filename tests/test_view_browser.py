"""view.html in a real headless Chromium (the system's package; .ci/run installs it).

Opens the page of a tiny run from file://, and checks: no console errors and no network
requests; the globe is drawn (not blank); moving the time slider changes the drawing;
hovering a satellite shows its tooltip with its name; the flat map, down links and a job's
paths draw. Screenshots are saved under the test's tmp folder (printed with -s).

Skips, with the reason, when playwright or a Chromium binary is missing, unless
MESHNET_REQUIRE_BROWSER=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str | None:
    env = os.environ.get("MESHNET_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _need(ok: bool, reason: str):
    if ok:
        return
    if os.environ.get("MESHNET_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MESHNET_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "playwright is not installed (pip install 'meshnet[test]')")
    exe = _chromium()
    env = os.environ.get("MESHNET_CHROMIUM")
    _need(exe is not None, f"MESHNET_CHROMIUM={env} is not a file" if env else
          "no Chromium binary on PATH (apt-get install -y chromium, or set "
          "MESHNET_CHROMIUM=/path/to/chromium)")
    pytest.importorskip("plotly", reason="the viewer needs the 'view' extra (plotly)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    from _viewrun import make_run

    return make_run(tmp_path_factory.mktemp("viewb")) / "view.html"


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


def test_page_in_headless_chromium(browser, page_path, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    stage = page.locator("#stage")

    # The globe is drawn: the stage is far from one flat colour.
    first = stage.screenshot(path=str(shots / "globe_t0.png"))
    px0 = _pixels(first)
    assert px0.std(axis=(0, 1)).mean() > 15, "the globe canvas looks blank"
    # Satellites (near-white dots) and coastlines are on it.
    assert np.count_nonzero(px0.min(axis=2) > 200) > 50

    # Moving the slider to the last instant changes the drawing.
    n_frames = page.evaluate("meshview.frames")
    page.locator("#slider").evaluate(
        f"(s) => {{ s.value = '{n_frames - 1}'; s.dispatchEvent(new Event('input')); }}")
    page.wait_for_function(f"document.getElementById('slider').value === '{n_frames - 1}'")
    page.wait_for_timeout(300)
    assert "t = 56.0 s" in page.locator("#clock").inner_text()
    later = _pixels(stage.screenshot(path=str(shots / "globe_last.png")))
    changed = np.abs(later - px0).max(axis=2) > 40
    assert changed.mean() > 0.002, "moving the slider did not change the drawing"

    # Between keyframes (kept 8 s apart here) the page interpolates positions: within
    # quantisation (0.25 km) of SGP4 at that instant.
    page.locator("#slider").evaluate(
        "(s) => { s.value = '3'; s.dispatchEvent(new Event('input')); }")
    page.wait_for_function("document.getElementById('clock').innerText.includes('t = 12.0 s')")
    got = np.array(page.evaluate("[...Array(meshview.sats).keys()].map(meshview.position)"))
    np.testing.assert_allclose(np.linalg.norm(got - _sgp4(page_path.parent, 12.0), axis=1), 0,
                               atol=0.3)
    page.locator("#slider").evaluate(
        f"(s) => {{ s.value = '{n_frames - 1}'; s.dispatchEvent(new Event('input')); }}")
    page.wait_for_function("document.getElementById('clock').innerText.includes('t = 56.0 s')")

    # Hovering a satellite shows its tooltip with its name.
    name, pos = page.evaluate("""() => {
        for (let u = 0; u < meshview.sats; u++) {
            const p = meshview.nodeScreen(u);
            if (p.visible) return [meshview.names[u], p];
        }
        return [null, null]; }""")
    assert name is not None
    page.mouse.move(pos["x"], pos["y"])
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible", timeout=5_000)
    assert name in tip.inner_text() and "links" in tip.inner_text()
    page.screenshot(path=str(shots / "hover.png"))

    # Hovering a link (away from any node) shows its state and physics.
    page.mouse.move(5, 5)
    tip.wait_for(state="hidden", timeout=5_000)
    for k in range(page.evaluate("meshview.linkScreen(0).drawn")):
        link = page.evaluate(f"meshview.linkScreen({k})")
        page.mouse.move(link["x"], link["y"])
        page.wait_for_timeout(50)
        text = tip.inner_text() if tip.is_visible() else ""
        if "length" in text:
            break
    assert link["a"] in text and link["b"] in text, text
    for field in ("state", "reason", "length", "delay", "capacity", "load", "utilisation"):
        assert field in text, field
    page.screenshot(path=str(shots / "hover_link.png"))
    page.mouse.move(pos["x"], pos["y"])
    tip.wait_for(state="visible", timeout=5_000)

    # Click pins the details; the flat map, down links and a job's paths draw.
    page.mouse.down()
    page.mouse.up()
    assert name in page.locator("#info").inner_text()
    page.locator("#down").check()
    page.select_option("#job", "job")
    page.wait_for_function("document.getElementById('info').innerText.includes('rank pairs')")
    page.locator("#mode").click()
    page.wait_for_timeout(300)
    flat = _pixels(stage.screenshot(path=str(shots / "map.png")))
    assert flat.std(axis=(0, 1)).mean() > 15
    magenta = (flat[..., 0] > 200) & (flat[..., 1] < 110) & (flat[..., 2] > 200)
    assert magenta.sum() > 20, "the job's paths are not highlighted"

    # A typed pair: the path the page finds is networkx's shortest-delay path over the links
    # up at that instant, stations not relaying (the run's routing).
    hops, ms = _pair_path(page, "New York", "Tokyo")
    exp_hops, exp_ms = _networkx_path(page_path.parent, "New York", "Tokyo", 56.0)
    assert hops == exp_hops and abs(ms - exp_ms) < 0.002

    # Play advances the clock.
    before = page.locator("#clock").inner_text()
    page.locator("#slider").evaluate(
        "(s) => { s.value = '0'; s.dispatchEvent(new Event('input')); }")
    page.locator("#play").click()
    page.wait_for_function(f"document.getElementById('clock').innerText !== {before!r}")
    page.locator("#play").click()
    page.screenshot(path=str(shots / "full.png"))

    assert problems == [], problems
    assert all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests), requests
    page.close()


def _sgp4(run_dir, t_s):
    """Positions (km, ECEF) of the run's satellites at ``t_s``, propagated here."""
    from meshnet.orbits.propagate import propagate
    from meshnet.scenario import load_scenario
    from meshnet.timegrid import TimeGrid
    from meshnet.world import build_world

    sc = load_scenario(run_dir.parent / "tiny.toml")
    grid = TimeGrid(sc.run.epoch, np.array([int(t_s * 1e9)], np.int64))
    return propagate(build_world(sc).constellation, grid).r_km[0]


def _pair_path(page, src, dst):
    import re

    page.fill("#src", src)
    page.fill("#dst", dst)
    page.locator("#dst").dispatch_event("change")
    page.wait_for_function(f"document.getElementById('info').innerText.includes({dst!r})")
    m = re.search(r"(\d+) hops, ([\d.]+) ms one way", page.locator("#info").inner_text())
    return int(m.group(1)), float(m.group(2))


def _networkx_path(run_dir, src, dst, t_s):
    import networkx as nx
    import pyarrow.parquet as pq

    links = pq.read_table(run_dir / "links.parquet").to_pandas()
    up = links[(links.t_s == t_s) & (links.state == "up")]
    g = nx.Graph()
    for r in up.itertuples():
        g.add_edge(r.a_name, r.b_name, km=r.length_km)
    stations = set(links.b_name[links.kind == "gsl"]) | set(links.a_name[links.kind == "gsl"])
    stations -= set(links.a_name[links.kind == "isl"])
    # stations do not relay: drop every station but the two ends
    g.remove_nodes_from([n for n in stations if n not in (src, dst)])
    path = nx.shortest_path(g, src, dst, weight="km")
    km = nx.path_weight(g, path, weight="km")
    return len(path) - 1, km / 299_792.458 * 1e3


def test_page_of_a_run_without_jobs(browser, tmp_path):
    """No training jobs: the page still loads cleanly; hovering a station names it."""
    from _viewrun import NO_JOBS, make_run

    page_path = make_run(tmp_path, text=NO_JOBS) / "view.html"
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(page_path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    assert "no training jobs" in page.locator("#c_step").inner_text()
    page.evaluate("meshview.setMode('map')")
    page.wait_for_timeout(200)
    pos = page.evaluate("meshview.nodeScreen(meshview.sats + 1)")     # London
    page.mouse.move(pos["x"], pos["y"])
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible", timeout=5_000)
    assert "London" in tip.inner_text() and "ground station" in tip.inner_text()
    page.screenshot(path=str(tmp_path / "no_jobs_map.png"))
    assert problems == [], problems
    page.close()
