"""Command-line interface: ``meshnet COMMAND ...`` (also ``python -m meshnet``).

Every caller mistake ends as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MeshnetError, quote_excerpt

DEFAULT_SCENARIO = "starlink_550_training"


def _add_time_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--duration", type=float, metavar="S", required=required,
                   help="seconds of orbit to cover (default: the scenario's duration_s)")
    p.add_argument("--step", type=float, metavar="S",
                   help="time step in seconds (default: the scenario's step_s)")


def _add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override a scenario key, e.g. --set routing.policy=predictive "
                        "--set links.acquisition_s=10 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshnet",
        description="Emulate laser-linked satellite networks carrying AI training traffic.",
        epilog="A SCENARIO is a built-in name (see 'meshnet info'), a .toml file, or a Hypatia "
               "satellite-network directory.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a scenario end to end (the main job)",
                       description="Run the full pipeline (orbits, links, routing, traffic, "
                                   "allocation) and write datasets, a summary and plots.")
    p.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                   help=f"scenario to run (default: {DEFAULT_SCENARIO})")
    _add_time_args(p)
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output directory (default: runs/<scenario name>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    _add_set(p)
    _add_quiet(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("info", help="versions, Numba threading, cache, built-in scenarios",
                       description="Print versions, Numba's threading layer and thread count, "
                                   "the kernel cache directory and the built-in scenarios.")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("show", help="print a scenario's validated settings",
                       description="Validate a scenario and print every table with defaults "
                                   "filled in.")
    p.add_argument("scenario")
    _add_set(p)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("positions", help="satellite positions to Parquet",
                       description="Propagate every satellite and write one row per (time, "
                                   "satellite): t, t_s, sat, name, x/y/z km, lat, lon, alt km.")
    p.add_argument("scenario")
    _add_time_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="FILE.parquet")
    _add_set(p)
    _add_quiet(p)
    p.set_defaults(func=_cmd_positions)

    p = sub.add_parser("links", help="link-availability dataset (Parquet or CSV)",
                       description="Write every link's state at every step, then a per-link "
                                   "and whole-mesh availability summary.")
    p.add_argument("scenario")
    _add_time_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument("--workers", type=int, metavar="N",
                   help="split the time axis into windows computed by N worker processes")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="compute the windows on a Dask cluster (scheduler address, or 'local')")
    p.add_argument("--windows", type=int, metavar="N",
                   help="number of time windows (default: 4 per worker)")
    p.add_argument("--warmup", type=float, metavar="S",
                   help="also print steady-state laser fleet figures (acquisitions per laser "
                        "per day, link-time and head-time up, mean link life) after "
                        "discarding the first S seconds")
    _add_set(p)
    _add_quiet(p)
    p.set_defaults(func=_cmd_links)

    p = sub.add_parser("paths", help="end-to-end path and RTT between two nodes over time",
                       description="Route SRC to DST at every step under the scenario's "
                                   "routing policy; write t_s, rtt_ms, one_way_ms, hops, path.")
    p.add_argument("scenario")
    p.add_argument("--src", required=True, help="ground station or satellite name, or node id")
    p.add_argument("--dst", required=True, help="ground station or satellite name, or node id")
    _add_time_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="FILE.csv|FILE.parquet")
    _add_set(p)
    _add_quiet(p)
    p.set_defaults(func=_cmd_paths)

    p = sub.add_parser("export-hypatia", help="a scenario in Hypatia's file format (ns-3)",
                       description="A scenario with a fixed ISL topology (plus_grid, static, "
                                   "cluster) becomes the Hypatia satellite-network folder DIR: "
                                   "tles.txt, isls.txt, ground_stations.txt, "
                                   "gsl_interfaces_info.txt, description.txt and "
                                   "dynamic_state_<step>ms_for_<duration>s/ (fstate_*.txt, "
                                   "gsl_if_bandwidth_*.txt) under Hypatia's semantics. For a "
                                   "Hypatia directory as SCENARIO, only dynamic_state_* is "
                                   "written, under DIR.")
    p.add_argument("scenario")
    _add_time_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="the satellite-network folder to write (replaced if it is an earlier "
                        "export); for a Hypatia directory, the parent of dynamic_state_*")
    _add_set(p)
    _add_quiet(p)
    p.set_defaults(func=_cmd_export_hypatia)

    p = sub.add_parser("planes", help="infer shells and planes of a TLE catalogue",
                       description="Group a real TLE catalogue into shells and orbital planes "
                                   "and report what fits no plane.")
    p.add_argument("tle_file", type=Path)
    p.set_defaults(func=_cmd_planes)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    # skyfield-data warns once its Earth-orientation table passes its end date; skyfield then
    # holds the last UT1-UTC prediction (metres of position error, irrelevant to link
    # geometry). Say nothing on the command line; library users still see the warning.
    warnings.filterwarnings("ignore", message=".*finals2000A.all has expired",
                            category=RuntimeWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except MeshnetError as exc:
        print(f"meshnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meshnet: interrupted", file=sys.stderr)
        return 130


def _scenario(args):
    from .scenario import apply_overrides, load_scenario

    return apply_overrides(load_scenario(args.scenario), getattr(args, "set", None))


def _grid(scenario, args):
    return scenario.grid(duration_s=args.duration, step_s=args.step)


def _check_out_suffix(path: Path, allowed: tuple[str, ...]) -> None:
    if path.suffix.lower() not in allowed:
        raise MeshnetError(
            f"--out {path}: expected a file ending in {' or '.join(allowed)}")


def _cmd_info(args) -> int:
    from .info import info_text

    print(info_text())
    return 0


def _cmd_show(args) -> int:
    import dataclasses
    import pprint

    from .scenario import _tables

    sc = _scenario(args)
    print(f"# {sc.source}")
    # Every table the scenario format knows, in its order ([scenario] is the `run` field).
    for table in _tables():
        print(f"[{table}]")
        value = getattr(sc, "run" if table == "scenario" else table)
        pprint.pprint(dataclasses.asdict(value), sort_dicts=False, width=100)
    for line in _compute_lines(sc):
        print(line)
    return 0


def _compute_lines(sc) -> list[str]:
    """``# job: compute_s = ...``: each job's compute per step, derived ones worked out."""
    jobs = sc.traffic.jobs
    if not jobs:
        return []
    lines = ["# compute per training step"]
    if all(j.compute_s is not None for j in jobs):
        return lines + [f"# {j.name}: compute_s = {j.compute_s:g} s (set by hand)" for j in jobs]
    import numpy as np

    from .traffic import make_job, place_compute
    from .world import build_world

    # The same placement as `meshnet run` (same seed, drawn first), for the node count.
    world = build_world(sc)
    nodes = place_compute(sc.traffic.compute, world.constellation, world.ground,
                          np.random.default_rng(sc.run.seed))
    for jc in jobs:
        job = make_job(jc, nodes, n_nodes=world.n_nodes)
        lines.append(f"# {job.name} ({job.n} nodes): {job.compute_model.describe()}")
    return lines


def _cmd_positions(args) -> int:
    from .io.positions import write_positions
    from .world import build_world

    _check_out_suffix(args.out, (".parquet",))
    sc = _scenario(args)
    grid = _grid(sc, args)
    world = build_world(sc)
    rows = write_positions(args.out, world.constellation, grid, progress=not args.quiet)
    print(f"wrote {rows:,} rows ({len(grid):,} steps x {world.n_sats:,} satellites) to {args.out}")
    return 0


def _cmd_links(args) -> int:
    import contextlib

    sc = _scenario(args)
    grid = _grid(sc, args)
    pool = _links_workers(args, sc, grid)
    with pool if pool is not None else contextlib.nullcontext():
        return _links_run(args, sc, grid, pool)


def _links_workers(args, sc, grid):
    """Validate ``--workers``/``--dask``/``--windows``; the worker pool to use, or None."""
    import os

    if args.workers is not None and args.dask:
        raise MeshnetError("--workers and --dask conflict: give one (a Dask cluster has its "
                           "own workers)")
    if args.windows is not None and not (args.workers or args.dask):
        raise MeshnetError("--windows needs --workers N or --dask ADDRESS")
    if args.windows is not None and args.windows < 1:
        raise MeshnetError(f"--windows must be at least 1, found {args.windows}")
    if args.workers is not None and args.workers < 1:
        raise MeshnetError(f"--workers must be at least 1, found {args.workers}")
    if not (args.workers or args.dask):
        return None
    from .distributed import Workers

    workers = args.workers
    if workers:
        cores = os.cpu_count() or 1
        if workers > cores:
            print(f"meshnet: note: --workers {workers} clamped to {cores} (CPU cores)",
                  file=sys.stderr)
            workers = cores
        if args.windows is not None and workers > args.windows:
            print(f"meshnet: note: --workers {workers} clamped to {args.windows} "
                  f"(--windows)", file=sys.stderr)
            workers = args.windows
        if workers > len(grid):
            workers = max(1, len(grid))
    return Workers(workers, args.dask)


def _links_run(args, sc, grid, pool) -> int:
    from .io.links_dataset import write_links_dataset

    tables = None
    world = None
    if pool is not None:
        from .distributed import windowed_link_tables
        from .links.model import _chunk_steps
        from .world import build_world

        world = build_world(sc)
        chunk = _chunk_steps(len(world.constellation.names))
        n_chunks = -(-len(grid) // chunk)
        if args.windows is not None and args.windows > n_chunks:
            print(f"meshnet: note: --windows {args.windows} clamped to {n_chunks} (windows "
                  f"start on propagation chunks of {chunk} steps)", file=sys.stderr)
        tables = windowed_link_tables(sc, grid, pool.executor, args.windows,
                                      progress=not args.quiet, workers=pool.n_workers,
                                      chunk_steps=chunk, spool=pool.spool)
    meter = None
    if args.warmup is not None:
        from .links.fleet import FleetMeter
        from .links.model import link_tables
        from .world import build_world

        if args.warmup < 0:
            raise MeshnetError(f"--warmup must be >= 0 s, found {args.warmup}")
        world = world or build_world(sc)
        meter = FleetMeter(world.n_sats, sc.links.n_terminals, args.warmup)
        if tables is None:
            tables = link_tables(sc, grid, progress=not args.quiet, world=world)
        tables = _metered(tables, meter)
    summary = write_links_dataset(sc, grid, args.out, fmt=args.format, progress=not args.quiet,
                                  tables=tables, world=world)
    print(summary.text() if hasattr(summary, "text") else summary)
    if meter is not None:
        from .links.fleet import format_figures

        print(format_figures(meter.figures()))
    return 0


def _metered(tables, meter):
    for t_ns, table in tables:
        meter.add(table)
        yield t_ns, table


def _cmd_paths(args) -> int:
    from .pathtrace import run_paths

    _check_out_suffix(args.out, (".csv", ".parquet"))
    sc = _scenario(args)
    grid = _grid(sc, args)
    print(run_paths(sc, grid, args.src, args.dst, args.out, progress=not args.quiet))
    return 0


def _cmd_export_hypatia(args) -> int:
    from .io.hypatia_export import run_export_hypatia

    sc = _scenario(args)
    grid = _grid(sc, args)
    print(run_export_hypatia(sc, grid, args.out, progress=not args.quiet))
    return 0


def _cmd_planes(args) -> int:
    from .orbits.tle import infer_planes, plane_report, read_tle_file

    if not args.tle_file.is_file():
        raise MeshnetError(f"{args.tle_file}: no such file")
    print(plane_report(infer_planes(read_tle_file(args.tle_file))))
    return 0


def run_folder(name, root: Path = Path("runs")) -> Path:
    """``runs/<name>``, the default output folder of ``meshnet run``, never outside ``runs/``.

    An absolute name or one with a ``..`` part is refused; any other character outside
    ``A-Z a-z 0-9 . _ -`` (a ``/``, a space, a control character) becomes ``_``.
    """
    import re

    text = str(name)
    parts = re.split(r"[/\\]", text)
    if (not text.strip() or text.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", text)
            or ".." in parts):
        raise MeshnetError(
            f"scenario name {quote_excerpt(text)} cannot name a folder under {root}/ (absolute "
            "or with '..'); set [run].name to a plain name or pass --out DIR")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip(".") or "run"
    return root / safe


def _cmd_run(args) -> int:
    from .runner import run

    sc = _scenario(args)
    grid = _grid(sc, args)
    out = args.out if args.out is not None else run_folder(sc.name)
    result = run(sc, grid, out, plots=not args.no_plots, progress=not args.quiet)
    print(result.report())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
