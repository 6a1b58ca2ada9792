"""Time-window splitting gives the single-process link dataset, bit for bit; workers behave."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from meshnet.distributed import window_bounds, window_plan, windowed_link_tables
from meshnet.io.links_dataset import write_links_dataset
from meshnet.links.model import link_tables
from meshnet.scenario import parse_scenario

SCENARIO = """
[scenario]
name = "w"
epoch = 2026-02-23T00:00:00Z
duration_s = 240
step_s = 2
seed = 1

[[constellation.shells]]
altitude_km = 550.0
inclination_deg = 53.0
planes = 12
sats_per_plane = 12
phasing = 5

[ground]
stations = "none"

[links]
topology = "plus_grid"
acquisition_s = 10
sun_exclusion_deg = 15
"""

CLUSTER = """
[scenario]
name = "c"
epoch = 2026-02-23T00:00:00Z
duration_s = 240
step_s = 2

[constellation.cluster]
n_sats = 16

[ground]
stations = "none"

[links]
topology = "cluster"
acquisition_s = 10
"""

#: A small propagation chunk, so that a short run splits into several windows.
CHUNK = 8


def test_window_bounds_cover_every_step_once():
    for n, w in ((10, 3), (7, 7), (5, 9), (1000, 16)):
        b = window_bounds(n, w)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(x[1] == y[0] for x, y in zip(b[:-1], b[1:], strict=True))


def test_window_plan_starts_on_chunks_with_enough_warm_up():
    for n, chunk, w, warm in ((1000, 100, 4, 150), (37, 8, 9, 5), (600, 600, 3, 10)):
        plan = window_plan(n, chunk, w, warm)
        assert plan[0][:2] == (0, 0) and plan[-1][2] == n
        for (_, _, b), (w0, a, _) in zip(plan[:-1], plan[1:], strict=True):
            assert a == b and a % chunk == 0 and w0 % chunk == 0
            assert w0 == 0 or a - w0 >= warm


def _static(tmp_path):
    sc = parse_scenario(SCENARIO)
    path = tmp_path / "isls.txt"  # each satellite with the next of its plane
    path.write_text("".join(f"{p * 12 + s} {p * 12 + (s + 1) % 12}\n"
                            for p in range(12) for s in range(12)))
    return replace(sc, links=replace(sc.links, topology="static", static_file=str(path)))


#: Ground stations under the distance rule (Hypatia's GSL reach): stateless, so exact too.
GSL_DISTANCE = SCENARIO.replace('stations = "none"',
                                'stations = "top100"\nmax_gsl_length_km = 1089.686')


#: 1,600 satellites, 1 s steps, chunks of 160 steps: large enough batches that propagation
#: interpolates between knots (n_sats x chunk >= 200,000), whose placement follows the chunk.
INTERP = (SCENARIO.replace("planes = 12", "planes = 40").replace("sats_per_plane = 12",
                                                                  "sats_per_plane = 40")
          .replace("duration_s = 240", "duration_s = 480").replace("step_s = 2", "step_s = 1"))


@pytest.mark.parametrize("kind,n_windows", [("plus_grid", 3), ("plus_grid", 7),
                                            ("static", 4), ("cluster", 5), ("gsl_distance", 3),
                                            ("interp", 3)])
def test_windows_reproduce_single_process_dataset_bit_for_bit(tmp_path, kind, n_windows):
    sc = {"plus_grid": lambda: parse_scenario(SCENARIO), "static": lambda: _static(tmp_path),
          "cluster": lambda: parse_scenario(CLUSTER),
          "gsl_distance": lambda: parse_scenario(GSL_DISTANCE),
          "interp": lambda: parse_scenario(INTERP)}[kind]()
    grid = sc.grid()
    chunk = 160 if kind == "interp" else CHUNK
    single = write_links_dataset(sc, grid, tmp_path / "one", progress=False,
                                 tables=link_tables(sc, grid, chunk_steps=chunk))
    with ThreadPoolExecutor(2) as ex:
        split = write_links_dataset(
            sc, grid, tmp_path / "split", progress=False,
            tables=windowed_link_tables(sc, grid, ex, n_windows, workers=2, chunk_steps=chunk,
                                        spool=n_windows % 2 == 1))
    a = pq.read_table(tmp_path / "one" / "links.parquet")
    b = pq.read_table(tmp_path / "split" / "links.parquet")
    assert a.num_rows == b.num_rows > 0
    if kind == "gsl_distance":
        assert "gsl" in set(a.column("kind").to_pylist())
    # Same states, reasons and float values bit for bit (pyarrow's equality is exact).
    assert a.equals(b)
    for key, value in single.mesh.items():
        if key != "created_utc":
            assert split.mesh[key] == value or (value != value and split.mesh[key] != value), key


# -- the command line: flags, and workers that behave -------------------------------------


def _meshnet(*args, **kw):
    return subprocess.run([sys.executable, "-m", "meshnet", *args], capture_output=True,
                          text=True, timeout=120, **kw)


@pytest.fixture()
def scenario_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    return path


@pytest.mark.parametrize("flags,words", [
    (["--workers", "2", "--dask", "tcp://127.0.0.1:8786"], "conflict"),
    (["--windows", "3"], "--windows needs"),
    (["--workers", "0"], "--workers must"),
    (["--workers", "2", "--windows", "0"], "--windows must"),
])
def test_worker_flags_are_checked(tmp_path, scenario_file, flags, words):
    res = _meshnet("links", str(scenario_file), "--out", str(tmp_path / "o"), "-q", *flags)
    assert res.returncode == 2 and words in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_malformed_dask_address_is_one_line(tmp_path, scenario_file):
    pytest.importorskip("distributed")
    res = _meshnet("links", str(scenario_file), "--out", str(tmp_path / "o"), "-q",
                   "--dask", "notanaddress")
    assert res.returncode == 2 and "--dask" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_more_workers_than_cores_is_clamped_with_a_note(tmp_path, scenario_file):
    res = _meshnet("links", str(scenario_file), "--out", str(tmp_path / "o"), "-q",
                   "--workers", "999")
    assert res.returncode == 0, res.stderr
    assert "clamped" in res.stderr
    single = _meshnet("links", str(scenario_file), "--out", str(tmp_path / "one"), "-q")
    assert single.returncode == 0
    assert pq.read_table(tmp_path / "o" / "links.parquet").equals(
        pq.read_table(tmp_path / "one" / "links.parquet"))


def _children(pid: int) -> list[int]:
    """Live descendants of ``pid`` (from /proc)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _start_worker_run(tmp_path, scenario_file):
    """A ``links --workers 2`` run, returned once its worker processes exist."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshnet", "links", str(scenario_file), "--out",
         str(tmp_path / "o"), "-q", "--workers", "2", "--windows", "2", "--duration", "36000",
         "--step", "1"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "stderr.txt").open("w"), text=True)
    deadline = time.monotonic() + 60
    kids: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        if len(kids) >= 2:
            break
        time.sleep(0.1)
    if len(kids) < 2:
        proc.kill()
        proc.wait()
        pytest.fail(f"no workers started: {(tmp_path / 'stderr.txt').read_text()[-2000:]}")
    time.sleep(1.0)  # let the workers start their windows
    return proc, kids


pytestmark_linux = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                      reason="needs Linux /proc")


@pytestmark_linux
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_their_parent(tmp_path, scenario_file, sig):
    proc, kids = _start_worker_run(tmp_path, scenario_file)
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.1)
    left = [k for k in kids if _alive(k)]
    for k in left:
        os.kill(k, signal.SIGKILL)  # tidy up after a failure
    assert not left, "worker processes outlived their parent"
    import tempfile

    from meshnet.distributed import _remove_stale_spools

    _remove_stale_spools()  # what the next worker run does first
    assert not list(Path(tempfile.gettempdir()).glob(f"meshnet-windows-{proc.pid}-*"))


@pytestmark_linux
def test_ctrl_c_ends_a_worker_run_without_traceback(tmp_path, scenario_file):
    proc, kids = _start_worker_run(tmp_path, scenario_file)
    os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("Ctrl-C did not end the run")
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.1)
    assert not any(_alive(k) for k in kids)


def test_spool_folders_of_killed_runs_are_removed(tmp_path, monkeypatch):
    import tempfile

    from meshnet import distributed

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"meshnet-windows-{dead.pid}-abc"
    live = tmp_path / f"meshnet-windows-{os.getpid()}-abc"
    for d in (stale, live):
        d.mkdir()
        (d / "window-000000000-x.pkl").write_bytes(b"x")
    distributed._remove_stale_spools()
    assert not stale.exists() and live.exists()


# -- workers that write: each window accumulated and encoded by a worker, parts concatenated --


def test_balanced_plan_covers_the_run_on_chunks_with_equal_costs():
    from meshnet.distributed import balanced_window_plan

    for n, chunk, w, warm in ((1000, 100, 2, 150), (3600, 60, 2, 620), (37, 8, 9, 5),
                              (600, 600, 3, 10), (1000, 10, 5, 40), (100, 10, 4, 400)):
        plan = balanced_window_plan(n, chunk, w, warm)
        assert plan[0][:2] == (0, 0) and plan[-1][2] == n and len(plan) <= w
        for (_, _, b), (w0, a, _) in zip(plan[:-1], plan[1:], strict=True):
            assert a == b and a % chunk == 0 and w0 % chunk == 0
            assert a - w0 >= warm
        cost = [b - w0 for w0, _, b in plan]
        assert max(cost) - min(cost) <= 2 * chunk or len(plan) == 1
    # Windows shorter than their warm-up would not pay: one window then.
    assert balanced_window_plan(100, 10, 4, 400) == [(0, 0, 100)]


@pytest.mark.parametrize("kind,n_windows,fmt,spool", [
    ("plus_grid", 3, "parquet", True), ("plus_grid", 4, "csv", False),
    ("gsl_distance", 2, "parquet", False), ("gsl_distance", 3, "csv", True),
    ("static", 3, "parquet", True)])
def test_worker_parts_concatenate_to_the_single_process_dataset(tmp_path, kind, n_windows,
                                                                 fmt, spool):
    from meshnet.distributed import window_parts

    sc = {"plus_grid": lambda: parse_scenario(SCENARIO), "static": lambda: _static(tmp_path),
          "gsl_distance": lambda: parse_scenario(GSL_DISTANCE)}[kind]()
    grid = sc.grid()
    created = "2026-01-01T00:00:00+00:00"
    single = write_links_dataset(sc, grid, tmp_path / "one", fmt=fmt, progress=False,
                                 tables=link_tables(sc, grid, chunk_steps=CHUNK),
                                 created=created)
    with ThreadPoolExecutor(2) as ex:
        parts = window_parts(sc, grid, ex, n_windows, workers=2, chunk_steps=CHUNK,
                             spool=spool, fmt=fmt, created=created)
        split = write_links_dataset(sc, grid, tmp_path / "split", fmt=fmt, progress=False,
                                    parts=parts, created=created)
    one, two = (tmp_path / d / f"links.{fmt}" for d in ("one", "split"))
    if fmt == "csv":
        assert one.read_bytes() == two.read_bytes()  # one header, rows in the same order
    else:
        a, b = pq.read_table(one), pq.read_table(two)
        assert a.num_rows > 0 and a.equals(b)
        assert a.schema.metadata == b.schema.metadata
        f = pq.ParquetFile(two)
        assert f.num_row_groups >= min(n_windows, 2)  # really made of several parts
        names = [f.read_row_group(i).column("a_name").chunk(0).dictionary
                 for i in range(f.num_row_groups)]
        assert all(d.equals(names[0]) for d in names)  # one dictionary for every part
    for key, value in single.mesh.items():
        assert split.mesh[key] == value or (value != value and split.mesh[key] != value), key
    sa = single.per_link.to_pandas()
    sb = split.per_link.to_pandas()
    assert sa.equals(sb)  # NaN-aware, value for value


def test_dask_workers_return_parts_that_give_the_single_process_dataset(tmp_path):
    distributed = pytest.importorskip("distributed")
    from meshnet.distributed import window_parts

    sc = parse_scenario(GSL_DISTANCE)
    grid = sc.grid()
    created = "2026-01-01T00:00:00+00:00"
    write_links_dataset(sc, grid, tmp_path / "one", progress=False, created=created,
                        tables=link_tables(sc, grid, chunk_steps=CHUNK))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        parts = window_parts(sc, grid, client.get_executor(), 3, workers=2, chunk_steps=CHUNK,
                             spool=False, created=created)  # parts come back as bytes
        write_links_dataset(sc, grid, tmp_path / "dask", progress=False, parts=parts,
                            created=created)
    a = pq.read_table(tmp_path / "one" / "links.parquet")
    b = pq.read_table(tmp_path / "dask" / "links.parquet")
    assert a.num_rows > 0 and a.equals(b)
    assert pq.ParquetFile(tmp_path / "dask" / "links.parquet").num_row_groups == 3
