"""Steady-state fleet figures of laser link management on the real Starlink catalogue.

Runs the ``dynamic`` topology on a TLE catalogue (default: the 2026-02-23 file next to the
repository, 9,543 satellites) from several start epochs, discards a warm-up, and reports
acquisitions per laser per day, link-time up, head-time up and mean link life
(:mod:`meshnet.links.fleet`) beside SpaceX's published figures. Ground stations are left out:
they use no laser head.

Usage::

    python bench/bench_fleet.py --config fleet --hours 6 --warmup-h 1 --offsets-h 0 8 16
    python bench/bench_fleet.py --config default --set links.reoptimise_interval_s=300
    python bench/bench_fleet.py --list

Each (config, offset) result is printed and, with ``--json FILE``, appended to FILE as one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

from _data import REAL_TLE  # noqa: E402  (bench/_data.py, beside this script)

ROOT = Path(__file__).resolve().parents[1]
TLE = REAL_TLE
EPOCH = "2026-02-23T12:00:00Z"

SPACEX = ("SpaceX, Jan 2024: ~30 acquisitions per laser per day (266,000/day, > 9,000 lasers), "
          "> 99 % link uptime")

#: The calibrated link management of topologies/starlink_fleet.toml ([links] keys).
FLEET = {"reoptimise_interval_s": 450.0, "reoptimise_new_partner": True,
         "acquisition_s": 8.0, "acquisition_sigma": 0.5}

#: Named link settings ([links] keys) compared in docs/links.md.
CONFIGS = {
    "default": {},
    "reopt_600": {"reoptimise_interval_s": 600.0},
    "reopt_300": {"reoptimise_interval_s": 300.0},
    "reopt_120": {"reoptimise_interval_s": 120.0},
    "reopt_60": {"reoptimise_interval_s": 60.0},
    "rotate_480": {"reoptimise_interval_s": 480.0, "reoptimise_new_partner": True},
    "rotate_240": {"reoptimise_interval_s": 240.0, "reoptimise_new_partner": True},
    # The calibrated model of topologies/starlink_fleet.toml and its variations.
    "fleet": dict(FLEET),
    "fleet_acq_30": {**FLEET, "acquisition_s": 30.0},
    "fleet_acq_15": {**FLEET, "acquisition_s": 15.0},
    "fleet_rotate_540": {**FLEET, "reoptimise_interval_s": 540.0},
    "fleet_rotate_300": {**FLEET, "reoptimise_interval_s": 300.0},
    "fleet_mbb4": {**FLEET, "handover": "make_before_break", "terminals": 4},
}


def _toml_value(v) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def scenario(config: dict, tle: Path, epoch: str, seed: int = 1):
    """The real-catalogue scenario with ``config`` ([links] keys) applied."""
    from meshnet.scenario import parse_scenario

    config = {"terminals": 3, **config}
    links = "\n".join(f"{k} = {_toml_value(v)}" for k, v in config.items())
    return parse_scenario(f"""
[scenario]
name = "fleet_{tle.stem}"
epoch = {epoch}
duration_s = 3600.0
step_s = 1.0
seed = {seed}
[constellation]
tle_file = "{tle}"
[ground]
stations = "none"
[links]
topology = "dynamic"
{links}
""")


def measure(sc, hours: float, warmup_h: float, offset_h: float, step_s: float,
            progress: bool = False) -> dict:
    """Fleet figures of ``sc`` from its epoch + ``offset_h``, ``warmup_h`` discarded."""
    from meshnet.links import link_model, model_tables
    from meshnet.links.fleet import FleetMeter
    from meshnet.world import build_world

    epoch = sc.run.epoch + timedelta(hours=offset_h)
    sc = sc.replace(run=replace(sc.run, epoch=epoch))
    world = build_world(sc)
    grid = sc.grid(duration_s=(hours + warmup_h) * 3600.0, step_s=step_s)
    model = link_model(sc, grid, world)
    meter = FleetMeter(model.n_sats, model.n_terminals, warmup_h * 3600.0)
    t0 = time.perf_counter()
    for _, table in model_tables(model, world.constellation, grid, progress=progress):
        meter.add(table)
    f = meter.figures()
    f.update(epoch_utc=epoch.isoformat(), wall_s=time.perf_counter() - t0,
             links={k: getattr(sc.links, k) for k in (
                 "terminals", "acquisition_s", "acquisition_sigma", "reoptimise_interval_s",
                 "reoptimise_new_partner", "handover")})
    return f


def main(argv=None) -> int:
    from meshnet.links.fleet import format_figures
    from meshnet.scenario import apply_overrides

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="fleet", help="named settings (see --list)")
    ap.add_argument("--set", action="append", default=[], metavar="links.KEY=VALUE",
                    help="override a scenario key on top of the config (repeatable)")
    ap.add_argument("--tle", type=Path, default=TLE)
    ap.add_argument("--epoch", default=EPOCH, help=f"base start epoch (default {EPOCH})")
    ap.add_argument("--offsets-h", type=float, nargs="+", default=[0.0, 8.0, 16.0],
                    help="start epochs as hours after --epoch (default 0 8 16)")
    ap.add_argument("--hours", type=float, default=6.0, help="measured hours (default 6)")
    ap.add_argument("--warmup-h", type=float, default=1.0, help="discarded hours (default 1)")
    ap.add_argument("--step", type=float, default=1.0, help="time step in s (default 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="append one JSON line per result")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--list", action="store_true", help="list the named configs")
    args = ap.parse_args(argv)
    if args.list:
        for name, cfg in CONFIGS.items():
            print(f"{name:14} {cfg}")
        return 0
    if args.config not in CONFIGS:
        print(f"unknown config {args.config!r}; see --list", file=sys.stderr)
        return 2
    if not args.tle.exists():
        print(f"skipped: {args.tle} not found")
        return 0
    sc = apply_overrides(scenario(CONFIGS[args.config], args.tle, args.epoch, args.seed),
                         args.set)
    print(f"{args.config} {args.set or ''}: {SPACEX}", flush=True)
    for off in args.offsets_h:
        f = measure(sc, args.hours, args.warmup_h, off, args.step, args.progress)
        f.update(config=args.config, overrides=args.set, offset_h=off)
        print(f"\nstart {f['epoch_utc']} (+{off:g} h), {f['wall_s']:.0f} s wall")
        print(format_figures(f), flush=True)
        if args.json:
            with args.json.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(f) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
