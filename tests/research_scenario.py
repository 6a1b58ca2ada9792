"""A small scenario for the routing-research tests (144 satellites, 3 stations, one job)."""

from __future__ import annotations

from small_scenario import STATIONS, small_toml

SMALL = small_toml(duration_s=20)


def write_small(tmp_path, extra: str = "", routing: str = "") -> object:
    """``small.toml`` (and its stations) in ``tmp_path``; ``routing`` is put in [routing]."""
    (tmp_path / "st.csv").write_text(STATIONS)
    text = SMALL
    if routing:
        text += "\n[routing]\n" + routing + "\n"
    path = tmp_path / "small.toml"
    path.write_text(text + extra)
    return path
