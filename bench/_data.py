"""Where the benchmarks find the shared real data (never copied into the repository)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ``../shared/data`` beside the checkout, as in CI.
SHARED_DATA = ROOT.parent / "shared" / "data"
#: The public Starlink catalogue of 2026-02-23 (9,543 satellites).
REAL_TLE = SHARED_DATA / "starlink_2026-02-23.tle"
