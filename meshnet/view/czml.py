"""``meshnet export-czml``: a run as CZML, the JSON scene format of CesiumJS.

The file is one JSON array of packets:

- ``document`` first (CZML requires it): name, ``version`` "1.0" and a ``clock`` over the run;
- ``sat/<name>`` per satellite: ``position`` sampled as ``cartesian`` ``[t, x, y, z, ...]``
  (seconds from the packet's ``epoch``, metres, Earth-fixed frame ``FIXED``) at the viewer's
  keyframes (at most 10 s apart; Lagrange interpolation of degree 5 in between), a ``point``;
- ``gs/<name>`` per ground station: a fixed ``cartesian`` position, a point and a label;
- ``link/<a>/<b>`` per laser or ground link that is ever up: a ``polyline`` between the two
  end packets' positions (``references``) whose ``availability`` lists the intervals when the
  link was up, at the run's full time resolution (a step counts from its instant to the next).

Examples
--------
>>> packets = czml_packets("runs/starlink_550_training")        # doctest: +SKIP
>>> packets[0]["id"], packets[1]["id"][:4]                      # doctest: +SKIP
('document', 'sat/')
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

from ..io.datasets import atomic_write
from .data import load_run

_UP = 1 + 16 * 2  # lowest state code of an up link (see RunView.code)


def _iso(epoch: dt.datetime, t_s: float) -> str:
    return (epoch + dt.timedelta(seconds=float(t_s))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def up_intervals(up: np.ndarray, t_s: np.ndarray, step_s: float) -> list[tuple[float, float]]:
    """Runs of consecutive up steps as ``(start_s, end_s)``; a step lasts ``step_s``.

    Examples
    --------
    >>> up_intervals(np.array([1, 1, 0, 1], bool), np.array([0., 1., 2., 3.]), 1.0)
    [(0.0, 2.0), (3.0, 4.0)]
    """
    up = np.asarray(up, bool)
    edges = np.diff(np.r_[0, up.astype(np.int8), 0])
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    return [(float(t_s[s]), float(t_s[e - 1] + step_s)) for s, e in zip(starts, ends, strict=True)]


def czml_packets(run_dir) -> list[dict]:
    """The CZML packets of the run in ``run_dir`` (see the module notes)."""
    v = load_run(run_dir, max_link_cells=2**62, link_values=False)
    epoch = dt.datetime.fromisoformat(v.epoch_iso.replace("Z", "+00:00"))
    t_end = float(v.steps_t_s[-1] + v.step_s)
    start, stop = _iso(epoch, v.steps_t_s[0]), _iso(epoch, t_end)
    packets: list[dict] = [{
        "id": "document", "name": f"meshnet {v.scenario_name}", "version": "1.0",
        "clock": {"interval": f"{start}/{stop}", "currentTime": start, "multiplier": 10,
                  "range": "LOOP_STOP", "step": "SYSTEM_CLOCK_MULTIPLIER"},
    }]
    names = v.node_names
    compute = {u for j in v.jobs.values() for u in j["nodes"]}
    for i in range(v.n_sats):
        r = v.sat_r_km[:, i, :].astype(np.float64) * 1e3
        ok = np.isfinite(r).all(axis=1)
        if not ok.any():
            continue
        samples = np.column_stack([v.key_t_s[ok], np.round(r[ok], 1)]).ravel().tolist()
        rgba = [255, 140, 26, 255] if i in compute else [232, 237, 247, 255]
        packets.append({
            "id": f"sat/{names[i]}", "name": names[i],
            "availability": f"{_iso(epoch, v.key_t_s[ok][0])}/{stop}",
            "position": {"epoch": _iso(epoch, 0.0), "referenceFrame": "FIXED",
                         "interpolationAlgorithm": "LAGRANGE", "interpolationDegree": 5,
                         # the last step lasts step_s past the last sample
                         "forwardExtrapolationType": "EXTRAPOLATE",
                         "cartesian": samples},
            "point": {"pixelSize": 5 if i in compute else 3, "color": {"rgba": rgba}},
        })
    for g in range(len(v.ground_r_km)):
        name = names[v.n_sats + g]
        packets.append({
            "id": f"gs/{name}", "name": name,
            "position": {"cartesian": np.round(v.ground_r_km[g] * 1e3, 1).tolist()},
            "point": {"pixelSize": 6, "color": {"rgba": [65, 224, 123, 255]}},
            "label": {"text": name, "font": "11px sans-serif", "show": False,
                      "pixelOffset": {"cartesian2": [0, -14]}},
        })
    ref = [f"sat/{n}" for n in names[:v.n_sats]] + [f"gs/{n}" for n in names[v.n_sats:]]
    up = v.code >= _UP
    for p in np.nonzero(up.any(axis=1))[0]:
        a, b = int(v.pair_a[p]), int(v.pair_b[p])
        spans = up_intervals(up[p], v.frame_t_s, v.step_s * v.link_stride)
        isl = v.pair_kind[p] == 0
        packets.append({
            "id": f"link/{names[a]}/{names[b]}",
            "name": f"{names[a]} - {names[b]} ({'laser' if isl else 'ground'} link)",
            "availability": [f"{_iso(epoch, s)}/{_iso(epoch, e)}" for s, e in spans],
            "polyline": {
                "positions": {"references": [f"{ref[a]}#position", f"{ref[b]}#position"]},
                "width": 1.5 if isl else 1.0, "arcType": "NONE",
                "material": {"solidColor": {"color": {
                    "rgba": [47, 181, 165, 200] if isl else [154, 164, 189, 160]}}},
            },
        })
    return packets


def write_czml(run_dir, out=None) -> Path:
    """Write the run's CZML (default ``run_dir/run.czml``); return the path."""
    packets = czml_packets(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "run.czml"
    text = json.dumps(packets, separators=(",", ":"))
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return out
