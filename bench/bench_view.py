"""Viewer page size, load time and frame rate in headless Chromium, for given run folders.

    python bench/bench_view.py runs/starlink_550_training runs/starlink_gen1_training

For each folder: writes view.html (``meshnet view``), reports its size, then opens it in
the system's Chromium (playwright) and plays it for ``--seconds`` in each of the globe and
the flat map, several times alternating, and prints min and median of:
``draws/s`` (completed redraws of the scene) and ``rAF/s`` (requestAnimationFrame callbacks,
i.e. how often the browser could paint). Also the mean time of one redraw in the page.
No fixed reference figures: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path


def measure(page, mode: str, seconds: float) -> tuple[float, float, float]:
    page.evaluate(f"meshview.setMode('{mode}')")
    page.wait_for_timeout(300)
    s0 = page.evaluate("meshview.stats()")
    page.evaluate("meshview.play(true)")
    page.wait_for_timeout(int(seconds * 1000))
    page.evaluate("meshview.play(false)")
    s1 = page.evaluate("meshview.stats()")
    n = s1["renders"] - s0["renders"]
    return (n / seconds, (s1["rafs"] - s0["rafs"]) / seconds,
            (s1["draw_ms"] - s0["draw_ms"]) / max(n, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from meshnet.view import write_view

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium)
        for run_dir in args.run_dirs:
            t = time.perf_counter()
            out = write_view(run_dir)
            build_s = time.perf_counter() - t
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            errors = []
            page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else 0)
            t = time.perf_counter()
            page.goto(out.resolve().as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=300_000)
            load_s = time.perf_counter() - t
            info = page.evaluate("({f: meshview.frames, p: meshview.pairs, n: meshview.sats})")
            print(f"{run_dir}: view.html {out.stat().st_size / 1e6:.2f} MB (built in "
                  f"{build_s:.1f} s), {info['n']} satellites, {info['p']} link pairs x "
                  f"{info['f']} frames; loads in {load_s:.1f} s; console errors: {len(errors)}")
            res = {"globe": [], "map": []}
            for _ in range(args.repeats):
                for mode in res:
                    res[mode].append(measure(page, mode, args.seconds))
            for mode, rows in res.items():
                draws, rafs, ms = zip(*rows, strict=True)
                print(f"  {mode:<5} draws/s min {min(draws):5.1f} median "
                      f"{statistics.median(draws):5.1f} | rAF/s min {min(rafs):5.1f} median "
                      f"{statistics.median(rafs):5.1f} | one redraw {statistics.median(ms):.1f} ms")
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
