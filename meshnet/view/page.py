"""Write ``view.html``: one self-contained page (plotly.js, data and script inline).

The data travel as gzip-compressed, base64-encoded typed arrays that the page inflates with
the browser's own ``DecompressionStream``; nothing is fetched at view time. Quantisation (the
page states it): utilisation to 0.5 %, loads, capacities and lengths to 1/65,000 of their
maximum, positions to 1/32,000 of the largest coordinate (about 0.25 km for LEO; for a compact
formation, of the largest offset from its centre, so centimetres for a formation of a few km).
"""

from __future__ import annotations

import base64
import gzip
import html
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import MeshnetError
from ..io.datasets import atomic_write, dumps_strict
from .coastlines import coastlines
from .data import RunView


def _pack(arr: np.ndarray) -> str:
    raw = np.ascontiguousarray(arr).tobytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def _scaled_u16(arr: np.ndarray) -> tuple[str, float]:
    top = float(np.nanmax(arr)) if arr.size else 0.0
    scale = top / 65000.0 if top > 0 else 1.0
    q = np.rint(np.nan_to_num(arr, nan=0.0) / scale).clip(0, 65535).astype("<u2")
    # Along time the values change little: frame-to-frame differences compress far better.
    d = q.astype(np.int32)
    d[:, 1:] = np.diff(d, axis=1)
    return _pack((d & 0xFFFF).astype("<u2")), scale


def build_payload(v: RunView) -> dict:
    """The JSON object the page script reads (arrays packed, see :func:`_pack`)."""
    r = v.sat_r_km.astype(np.float64)
    # Quantised about each keyframe's centre when the satellites fly in a compact formation
    # (a few km across), about the Earth's centre otherwise: the step stays small either way.
    centre = np.zeros((r.shape[0], 3))
    if np.isfinite(r).any():
        with np.errstate(invalid="ignore"):
            c = np.nanmean(r, axis=1)
        compact = np.isfinite(c).all() and np.linalg.norm(c, axis=1).min() > 3000.0
        centre = np.where(compact, np.nan_to_num(c), 0.0)
    dev = r - centre[:, None, :]
    top = float(np.nanmax(np.abs(dev))) if np.isfinite(dev).any() else 1.0
    pos_scale = max(top, 1e-6) / 32000.0
    q = np.where(np.isfinite(dev), np.rint(np.nan_to_num(dev) / pos_scale), -32768)
    load, load_scale = _scaled_u16(v.load_gbps)
    cap, cap_scale = _scaled_u16(v.capacity_gbps)
    length, len_scale = _scaled_u16(v.length_km)
    coast = []
    for line in coastlines():
        coast.append(np.round(line, 2).tolist())
    steps = v.steps_t_s
    notes = []
    if v.link_stride > 1:
        notes.append(f"links are shown every {v.link_stride} steps "
                     f"({v.link_stride * v.step_s:g} s) to bound the file size")
    if v.series.get("block_steps", 1) > 1:
        notes.append(f"the side panels average blocks of {v.series['block_steps']} steps")
    notes.append(f"positions are kept at most {_key_dt(v):g} s apart and interpolated on "
                 f"the sphere in between (source: {v.position_source})")
    return {
        "scenario": v.scenario_name,
        "epoch": v.epoch_iso,
        "step_s": v.step_s,
        "steps": int(len(steps)),
        "names": v.node_names,
        "n_sats": v.n_sats,
        "ground_r_km": np.round(v.ground_r_km, 2).tolist(),
        "ground_lat_lon": np.round(v.ground_lat_lon, 4).tolist(),
        "key_t_s": v.key_t_s.tolist(),
        "pos": _pack(q.astype("<i2")),
        "pos_scale": pos_scale,
        "pos_centre": np.round(centre, 6).tolist(),
        "frame_t_s": v.frame_t_s.tolist(),
        "link_stride": v.link_stride,
        "pair_a": _pack(v.pair_a.astype("<i4")),
        "pair_b": _pack(v.pair_b.astype("<i4")),
        "pair_kind": _pack(v.pair_kind.astype(np.uint8)),
        "code": _pack(v.code),
        "util": _pack(np.rint(np.clip(v.util, 0, 1.275) * 200).astype(np.uint8)),
        "load": load, "load_scale": load_scale,
        "cap": cap, "cap_scale": cap_scale,
        "len": length, "len_scale": len_scale,
        "reasons": v.reason_names,
        "jobs": v.jobs,
        "job_steps": v.job_steps,
        "series": {k: np.round(np.asarray(x, float), 6).tolist() for k, x in v.series.items()
                   if k != "block_steps"},
        "routing": v.routing,
        "ground_relay": v.ground_relay,
        "coast": coast,
        "notes": notes,
        "summary": _summary_lines(v.summary),
    }


def _key_dt(v: RunView) -> float:
    return float(np.max(np.diff(v.key_t_s))) if len(v.key_t_s) > 1 else v.step_s


def _summary_lines(s: dict) -> list[str]:
    if not s:
        return []
    out = [f"{s.get('satellites', '?')} satellites, {s.get('ground_stations', '?')} ground "
           f"stations, {s.get('steps', '?')} steps of {s.get('step_s', 0):g} s",
           f"routing {s.get('routing', '?')}, allocation {s.get('allocation', '?')}, "
           f"topology {s.get('topology', '?')}"]
    if "mean_isl_utilisation" in s:
        out.append(f"mean ISL utilisation {100 * s['mean_isl_utilisation']:.2f} %, link "
                   f"availability {100 * s.get('link_availability', 0):.2f} %")
    for j in s.get("jobs", []):
        if j.get("mean_step_s") is not None:
            out.append(f"job {j['job']}: {j['nodes']} nodes, {j['steps_done']} steps, mean "
                       f"{j['mean_step_s']:.3f} s, busbw {j.get('mean_busbw_gbps') or 0:.1f} "
                       "Gbps")
    return out


def render_html(v: RunView) -> str:
    """The whole page as a string."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise MeshnetError("the viewer needs plotly (it ships plotly.js); install it with "
                           "pip install 'meshnet[view]'") from None

    here = resources.files(__package__)
    template = (here / "template.html").read_text(encoding="utf-8")
    script = (here / "viewer.js").read_text(encoding="utf-8")
    payload = dumps_strict(build_payload(v), separators=(",", ":"))
    # Inside <script> only "</" can end the element early; JSON never needs it unescaped.
    payload = payload.replace("</", "<\\/")
    title = html.escape(f"meshnet view: {v.scenario_name}")
    parts = template.split("%%")
    fill = {"TITLE": title, "PLOTLYJS": get_plotlyjs(), "DATA": payload, "VIEWERJS": script}
    return "".join(fill.get(p, p) if i % 2 else p for i, p in enumerate(parts))


def write_view(run_dir, out=None, **load_kw) -> Path:
    """Write the viewer page of ``run_dir`` (default ``run_dir/view.html``); return its path.

    Examples
    --------
    >>> write_view("runs/starlink_550_training")            # doctest: +SKIP
    PosixPath('runs/starlink_550_training/view.html')
    """
    from .data import load_run

    v = load_run(run_dir, **load_kw)
    out = Path(out) if out is not None else Path(run_dir) / "view.html"
    text = render_html(v)
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return out
