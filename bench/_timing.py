"""Side-by-side timing helpers: candidates interleaved round-robin, ratios per round."""

from __future__ import annotations

import statistics
import time


def interleaved(fns: dict, repeat: int, warm: bool = True) -> dict:
    """Seconds of each candidate per round, the candidates run round-robin in each round (so
    a load change on the shared machine hits all alike)."""
    if warm:
        for fn in fns.values():
            fn()
    out = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


def ratios(base: list, ours: list) -> list:
    """``base[i] / ours[i]`` per round (or per step) measured side by side."""
    return [b / o for b, o in zip(base, ours, strict=True)]


def ratio_text(base: list, ours: list) -> str:
    """``min A.Ax, median B.Bx`` of the per-round ratios ``base / ours``."""
    r = ratios(base, ours)
    return f"min {min(r):.2f}x, median {statistics.median(r):.2f}x over {len(r)} rounds"


def ms_text(ts: list) -> str:
    return (f"min {min(ts) * 1e3:9.2f} ms  median {statistics.median(ts) * 1e3:9.2f} ms")
