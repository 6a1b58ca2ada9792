"""Command-line interface: ``meshnet COMMAND ...`` (also ``python -m meshnet``).

Every caller mistake ends as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MeshnetError, ScenarioError, quote_excerpt

DEFAULT_SCENARIO = "starlink_550_training"


def _add_time_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--duration", type=float, metavar="S", required=required,
                   help="seconds of orbit to cover (default: the scenario's duration_s)")
    p.add_argument("--step", type=float, metavar="S",
                   help="time step in seconds (default: the scenario's step_s)")
    p.add_argument("--force", action="store_true",
                   help="run even if the size estimate exceeds the limits (more than "
                        f"{MAX_ROWS:.0e} output rows or {MAX_MEMORY_GB:g} GB of memory)")


#: Limits of the up-front size estimate (see _check_size); --force overrides them.
MAX_ROWS = 1e9
MAX_MEMORY_GB = 16.0


def _add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="override a scenario key, e.g. --set routing.policy=predictive "
                        "--set links.acquisition_s=10 (repeatable)")


class _Parser(argparse.ArgumentParser):
    """Usage mistakes in one line (argparse prints the whole usage first), exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    p.add_argument("--view", action="store_true",
                   help="also write the browser viewer, view.html (see 'meshnet view')")
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
                   help="number of time windows (default: one per worker)")
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

    _add_view_parsers(sub)
    # --- meshnet sweep (meshnet/sweep, docs/sweep.md) ---
    p = sub.add_parser("sweep", help="run a scenario over a grid of overrides, seeds and "
                                     "epochs (on Dask)",
                       description="Run every combination a sweep file asks for (a base "
                                   "scenario, a grid or list of TABLE.KEY overrides, seeds, "
                                   "start epochs), each run a Dask task; write sweep.parquet "
                                   "(a row per run), per-run folders and comparison plots. "
                                   "Rerunning resumes: complete runs are skipped.",
                       epilog="SWEEP is a .toml file or a built-in sweep ("
                              + ", ".join(_builtin_sweeps()) + "). See docs/sweep.md.")
    p.add_argument("sweep", help="sweep file, or the name of a built-in sweep")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="the sweep's folder (default: runs/sweeps/<sweep name>)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--serial", action="store_true",
                       help="run in this process, one run after another (no Dask)")
    where.add_argument("--dask", metavar="ADDRESS",
                       help="a running Dask scheduler (tcp://HOST:8786) instead of a local "
                            "cluster; workers must see --out at the same path")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the local Dask cluster (default: one per core)")
    p.add_argument("--metric", action="append", default=[], metavar="NAME",
                   help="summary metric to plot (glob, repeatable; default: the sweep's "
                        "metrics), e.g. --metric 'jobs.*.p95_step_s'")
    p.add_argument("--force", action="store_true",
                   help="reuse a folder that holds a different sweep (unchanged runs kept)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    _add_quiet(p)
    p.set_defaults(func=_cmd_sweep)
    # --- end meshnet sweep ---

    p = sub.add_parser("planes", help="infer shells and planes of a TLE catalogue",
                       description="Group a real TLE catalogue into shells and orbital planes "
                                   "and report what fits no plane.")
    p.add_argument("tle_file", type=Path)
    p.set_defaults(func=_cmd_planes)

    # Routing research: `meshnet compare` and `meshnet graphs` (meshnet/routing/compare.py).
    from .routing.compare import add_commands

    add_commands(sub, _add_time_args, _add_set, _add_quiet)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    # skyfield-data warns once its Earth-orientation table passes its end date; skyfield then
    # holds the last UT1-UTC prediction (metres of position error, irrelevant to link
    # geometry). Say nothing on the command line; library users still see the warning.
    warnings.filterwarnings("ignore", message=".*finals2000A.all has expired",
                            category=RuntimeWarning)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except MeshnetError as exc:
        print(f"meshnet: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meshnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except OSError as exc:
        # Output problems (unwritable folder, disk full, a file where a folder belongs): the
        # writers have already removed their temporary files, so only the answer is left.
        where = f" {exc.filename}" if exc.filename else ""
        print(f"meshnet: error: cannot write or read{_one_line(where)}: "
              f"{exc.strerror or exc}; check the path, its permissions and free space",
              file=sys.stderr)
        return 2


def _closed_pipe() -> int:
    """The reader closed early (`meshnet show X | head -1`): not an error of ours. Point
    stdout at devnull so the interpreter's final flush does not raise again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, as a shell reports a pipe-killed command


def _one_line(text: str) -> str:
    """Control characters escaped, so the message stays one line whatever a file contains."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _scenario(args):
    from .scenario import apply_overrides, load_scenario

    sc = apply_overrides(load_scenario(args.scenario), getattr(args, "set", None))
    _check_input_files(sc)
    return sc


def _check_input_files(sc) -> None:
    """Every file the scenario names is a readable text file, checked before any output.

    Missing files are left to the loaders (their messages say where relative paths start);
    this catches FIFOs, devices and binary files up front so nothing is half-written.
    """
    from .config import check_input_file
    from .orbits.constellation import resolve_path
    from .orbits.ground import BUILTIN_STATIONS

    files = []
    c, g, links = sc.constellation, sc.ground, sc.links
    if c.tle_file is not None:
        files.append((c.tle_file, "TLE file", "[constellation].tle_file"))
    if g.stations.strip() not in ("none", *BUILTIN_STATIONS):
        files.append((g.stations.strip(), "ground-station CSV", "[ground].stations"))
    if getattr(links, "static_file", None) is not None:
        files.append((links.static_file, "static links file", "[links].static_file"))
    for text, what, key in files:
        try:
            check_input_file(resolve_path(text, sc.base_dir), what, missing_ok=True)
        except MeshnetError as exc:
            raise ScenarioError(f"{exc}; check {key}") from None


def _grid(scenario, args):
    from .timegrid import check_seconds

    # --duration/--step: finite, positive, not absurd; the grid rules (step <= duration,
    # step >= 1 ns, inside the ephemeris) are then the same as for the scenario's keys.
    duration = None if args.duration is None else check_seconds(args.duration, "--duration")
    step = None if args.step is None else check_seconds(args.step, "--step")
    try:
        return scenario.grid(duration_s=duration, step_s=step)
    except ScenarioError:
        raise
    except MeshnetError as exc:
        raise MeshnetError(f"--duration/--step: {exc}") from None


def size_estimate(n_steps: int, n_sats: int, n_links: int) -> dict:
    """Rough size of a run: output rows, bytes on disk, peak memory and time.

    Figures measured with ``meshnet links starlink_550 --duration 600`` and ``3000`` (1,584
    satellites, one core): about 5e5 link rows per second, 17 bytes per link row in Parquet,
    0.5 GB resident to start plus about 11 bytes per (step, satellite). ``n_links`` counts
    inter-satellite links only; ground links add about 20 % for the 100 built-in stations.
    A run with traffic (``meshnet run``) takes longer than this estimate.
    """
    link_rows = float(n_steps) * n_links
    pos_rows = float(n_steps) * n_sats
    return {
        "steps": n_steps, "link_rows": link_rows, "position_rows": pos_rows,
        "disk_gb": max(link_rows * 17, pos_rows * 40) / 1e9,
        "memory_gb": 0.5 + pos_rows * 11 / 1e9,
        "hours": (link_rows + pos_rows / 10) / 5e5 / 3600,
    }


def _check_size(sc, grid, args) -> None:
    """Refuse a run beyond :data:`MAX_ROWS` rows or :data:`MAX_MEMORY_GB` unless --force."""
    if getattr(args, "force", False):
        return
    n_sats = _n_sats(sc)
    if n_sats is None:
        return
    n_links = n_sats * max(1, int(sc.links.n_terminals or 4)) // 2  # None: static links
    est = size_estimate(len(grid), n_sats, n_links)
    rows = max(est["link_rows"], est["position_rows"])
    if rows > MAX_ROWS or est["memory_gb"] > MAX_MEMORY_GB:
        raise MeshnetError(
            f"run too large: {est['steps']:,} steps x {n_sats:,} satellites -> "
            f"~{rows:.2g} output rows, ~{est['disk_gb']:.3g} GB on disk, "
            f"~{est['memory_gb']:.3g} GB of memory, ~{est['hours']:.3g} h "
            f"(limits {MAX_ROWS:.0e} rows, {MAX_MEMORY_GB:g} GB); shorten --duration, "
            "raise --step, or pass --force")


def _n_sats(sc) -> int | None:
    """Satellite count from the scenario tables without building the world (None if unknown)."""
    c = sc.constellation
    total = sum(sh.planes * sh.sats_per_plane for sh in c.shells)
    if c.cluster is not None:
        total += c.cluster.n_sats
    if c.tle_file is not None:
        from .config import check_input_file

        path = Path(sc.base_dir) / c.tle_file
        check_input_file(path, "TLE file")  # stat first: never open a FIFO
        try:  # line 1 of each element set; a corrupt file is reported by the loader later
            with open(path, "rb") as fh:
                total += sum(1 for line in fh if line.startswith(b"1 "))
        except OSError:
            return None
    return total or None


def _check_out_suffix(path: Path, allowed: tuple[str, ...]) -> None:
    if path.suffix.lower() not in allowed:
        raise MeshnetError(
            f"--out {path}: expected a file ending in {' or '.join(allowed)}")


def _cmd_info(args) -> int:
    from .info import info_text

    print(info_text())
    return 0


def _cmd_show(args) -> int:
    print(scenario_toml(_scenario(args)), end="")
    return 0


def scenario_toml(sc, compute: bool = True) -> str:
    """A scenario as TOML that :func:`meshnet.scenario.parse_scenario` reads back unchanged.

    Every table is written with its defaults filled in; keys whose value is unset (``None``)
    are written as comments, since TOML has no null. Derived figures are ``#`` comments.
    """
    import dataclasses

    from .scenario import _tables

    out = [f"# {sc.source}"]
    # Every table the scenario format knows, in its order ([scenario] is the `run` field).
    for table in _tables():
        value = getattr(sc, "run" if table == "scenario" else table)
        out += _toml_table(table, dataclasses.asdict(value), array=False)
    if compute:
        out += _compute_lines(sc)
    return "\n".join(out) + "\n"


def _toml_key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value) -> str:
    import json
    import math
    from datetime import datetime

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                               for k, v in value.items() if v is not None) + "}"
    if isinstance(value, Path):
        return json.dumps(str(value))
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_table(name: str, table: dict, array: bool) -> list[str]:
    """``[name]`` (or ``[[name]]``) with scalars first, then sub-tables and arrays of tables."""
    lines = ["", f"[[{name}]]" if array else f"[{name}]"]
    nested = []
    for key, value in table.items():
        if value is None:
            lines.append(f"# {_toml_key(key)} = (unset)")
        elif isinstance(value, dict):
            nested.append((key, value, False))
        elif (isinstance(value, list | tuple) and value
              and all(isinstance(v, dict) for v in value)):
            nested += [(key, v, True) for v in value]
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value, is_array in nested:
        lines += _toml_table(f"{name}.{_toml_key(key)}", value, is_array)
    return lines


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
    _check_size(sc, grid, args)
    world = build_world(sc)
    rows = write_positions(args.out, world.constellation, grid, progress=not args.quiet)
    print(f"wrote {rows:,} rows ({len(grid):,} steps x {world.n_sats:,} satellites) to {args.out}")
    return 0


def _cmd_links(args) -> int:
    import contextlib

    sc = _scenario(args)
    grid = _grid(sc, args)
    _check_size(sc, grid, args)
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
        if args.warmup is None:
            # Workers accumulate and encode their windows; this process only concatenates.
            from datetime import UTC, datetime

            from .distributed import window_parts

            created = datetime.now(UTC).isoformat(timespec="seconds")
            parts = window_parts(sc, grid, pool.executor, args.windows,
                                 progress=not args.quiet, workers=pool.n_workers,
                                 chunk_steps=chunk, spool=pool.spool, world=world,
                                 fmt=args.format, created=created)
            summary = write_links_dataset(sc, grid, args.out, fmt=args.format,
                                          progress=not args.quiet, parts=parts, world=world,
                                          created=created)
            print(summary.text())
            return 0
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
    _check_size(sc, grid, args)
    print(run_paths(sc, grid, args.src, args.dst, args.out, progress=not args.quiet))
    return 0


def _cmd_export_hypatia(args) -> int:
    from .io.hypatia_export import run_export_hypatia

    sc = _scenario(args)
    grid = _grid(sc, args)
    _check_size(sc, grid, args)
    print(run_export_hypatia(sc, grid, args.out, progress=not args.quiet))
    return 0


def _cmd_planes(args) -> int:
    from .orbits.tle import infer_planes, plane_report, read_tle_file

    if not args.tle_file.exists():  # a FIFO or device is refused by read_tle, unopened
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
    _check_size(sc, grid, args)
    out = args.out if args.out is not None else run_folder(sc.name)
    result = run(sc, grid, out, plots=not args.no_plots, progress=not args.quiet)
    print(result.report())
    if args.view:
        _view_after_run(result)
    return 0


# --- meshnet view / export-czml (docs/view.md) -------------------------------------------------
def _add_view_parsers(sub) -> None:
    p = sub.add_parser("view", help="interactive browser viewer of a run (view.html)",
                       description="Write RUN_DIR/view.html: one self-contained page (works "
                                   "offline, no server) with the globe, links by utilisation, "
                                   "paths and the run's time series. Needs the 'view' extra: "
                                   "pip install 'meshnet[view]'.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder written by meshnet run")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="page to write (default: RUN_DIR/view.html)")
    p.add_argument("--serve", action="store_true",
                   help="then serve it on http://127.0.0.1:PORT/ until Ctrl-C and open a browser")
    p.add_argument("--port", type=int, default=8000, metavar="PORT",
                   help="port for --serve (default 8000; 0 picks a free one)")
    p.set_defaults(func=_cmd_view)

    p = sub.add_parser("export-czml", help="a run as CZML for CesiumJS",
                       description="Write the run as CZML: satellites as sampled positions, "
                                   "ground stations, and links with the intervals when they "
                                   "were up (docs/view.md).")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a folder written by meshnet run")
    p.add_argument("--out", type=Path, default=None, metavar="FILE.czml",
                   help="file to write (default: RUN_DIR/run.czml)")
    p.set_defaults(func=_cmd_export_czml)


def _view_module():
    try:
        from . import view
    except ImportError as exc:
        raise MeshnetError(f"the viewer needs the 'view' extra ({exc.name} is missing); "
                           "install it with pip install 'meshnet[view]'") from None
    return view


def _cmd_view(args) -> int:
    view = _view_module()
    out = view.write_view(args.run_dir, args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); open it in a browser")
    if args.serve:
        from .view.serve import serve

        serve(out, args.port)
    return 0


def _cmd_export_czml(args) -> int:
    from .view.czml import write_czml

    out = write_czml(args.run_dir, args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def _view_after_run(result) -> None:
    view = _view_module()
    dirs = [result.out_dir / label for label, _ in result.variants] if hasattr(
        result, "variants") else [result.out_dir]
    for d in dirs:
        print(f"viewer: {view.write_view(d)}")
def _builtin_sweeps() -> list[str]:
    from .sweep.config import builtin_sweeps

    return builtin_sweeps()


def _cmd_sweep(args) -> int:
    """``meshnet sweep``: exit 0 if every run succeeded, 1 if some failed (recorded)."""
    from .sweep import expand, load_sweep, run_sweep

    cfg = load_sweep(args.sweep)
    if args.workers is not None and (args.workers < 1 or args.serial or args.dask):
        raise MeshnetError("--workers N (N >= 1) sizes the local Dask cluster; it does not "
                           "go with --serial or --dask")
    out = args.out if args.out is not None else run_folder(cfg.name, Path("runs/sweeps"))
    if args.dry_run:
        runs = expand(cfg)
        for r in runs:
            print(r.run_id)
        print(f"{len(runs)} runs -> {out}")
        return 0
    mode = "serial" if args.serial else (args.dask or "local")
    result = run_sweep(cfg, out, mode=mode, workers=args.workers, force=args.force,
                       metrics=args.metric or None, progress=not args.quiet)
    print(result.report())
    return 1 if result.failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
