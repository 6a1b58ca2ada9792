#!/usr/bin/env python3
"""Mutation testing for meshnet: break one documented rule at a time, check a test fails.

Usage (from the repository root, with the project's virtualenv active)::

    nice -n 10 python tools/mutate.py                  # every curated mutant
    nice -n 10 python tools/mutate.py --quick          # a random sample of 12
    python tools/mutate.py --module meshnet/routing    # curated mutants of one area
    python tools/mutate.py --id alloc-demand-cap       # one mutant (repeatable)
    python tools/mutate.py --auto 20 --module meshnet/kernels   # 20 mechanical mutants
    python tools/mutate.py --list                      # list mutants, run nothing

Curated mutants live in ``tools/mutants.py``: each is a file, an exact snippet of it, its
replacement, and the documented rule the change breaks. Mechanical mutants (``--auto N``) are
drawn from the token stream of the chosen modules (``<`` <-> ``<=``, ``+`` <-> ``-``,
``==`` <-> ``!=``, ``and`` <-> ``or``, an integer constant off by one) with a seed.

Each worker (``--jobs``, 1 or 2) copies the repository's files (tracked and untracked, not
ignored) to a temporary folder with its own ``NUMBA_CACHE_DIR`` (so the caller's cache and
checkout are never touched), optionally (``--baseline``) runs the mapped tests once unmutated
(they must pass; otherwise every mutant would look killed), then for each mutant writes the
change, drops the Numba cache entries of the mutated module and of every module that imports it
(Numba does not track cross-module inlining), runs ``pytest -x`` on the mutant's tests with a
timeout, and restores the file. Outcomes: ``killed`` (a test failed, or the test process
crashed), ``timeout`` (counted as killed: the mutant made a test hang), ``survived``, ``stale``
(the snippet is no longer in the file: the code changed, update the mutant) and ``error`` (the
tests could not even be collected).
Kill rate = (killed + timeout) / (killed + timeout + survived), over non-equivalent mutants
(curated mutants marked ``equivalent`` are listed but not run).

Exit code 0 when the kill rate reaches ``--min-rate`` (default 0.9), 1 otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import queue
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from mutants import MODULE_TESTS, MUTANTS  # noqa: E402


@dataclass
class Mutant:
    id: str
    file: str
    old: str
    new: str
    rule: str
    tests: list[str] = field(default_factory=list)
    equivalent: str = ""
    auto: bool = False
    line: int = 0  # auto mutants: 1-based line the snippet (that whole line) must be at


@dataclass
class Result:
    id: str
    file: str
    outcome: str
    seconds: float
    rule: str
    detail: str = ""


# ------------------------------------------------------------------------------------ mutants


def curated() -> list[Mutant]:
    out = []
    for m in MUTANTS:
        out.append(Mutant(id=m["id"], file=m["file"], old=m["old"], new=m["new"],
                          rule=m["rule"], tests=list(m.get("tests", [])),
                          equivalent=m.get("equivalent", "")))
    ids = [m.id for m in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise SystemExit(f"tools/mutants.py: duplicate mutant ids {sorted(dup)}")
    return out


def tests_for(path: str) -> list[str]:
    """The test files mapped to a source file (longest matching prefix in MODULE_TESTS)."""
    best = ""
    for prefix in MODULE_TESTS:
        if path.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return list(MODULE_TESTS.get(best, []))


_SWAPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==", "+": "-",
          "-": "+", "*": "/", "and": "or", "or": "and", "True": "False", "False": "True"}


def auto_mutants(files: list[str], n: int, seed: int) -> list[Mutant]:
    """Mechanical one-token mutants of ``files``, ``n`` drawn at random with ``seed``.

    The snippet of each is its whole source line, so a later edit of that line makes it
    ``stale`` rather than silently mutating something else.
    """
    cands = []
    for rel in files:
        src = (ROOT / rel).read_text()
        lines = src.splitlines(keepends=True)
        try:
            toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
        except (tokenize.TokenError, SyntaxError):
            continue
        for tok in toks:
            (row, col), (erow, ecol) = tok.start, tok.end
            if row != erow or row > len(lines):
                continue
            line = lines[row - 1]
            stripped = line.lstrip()
            if stripped.startswith(("@", "def ", "class ", "import ", "from ", "raise ",
                                    "#", "assert ")) or '"' in line or "'" in line:
                continue  # signatures, messages and literals: rarely a rule
            if tok.type == tokenize.OP and tok.string in _SWAPS:
                new = _SWAPS[tok.string]
            elif tok.type == tokenize.NAME and tok.string in _SWAPS:
                new = _SWAPS[tok.string]
            elif tok.type == tokenize.NUMBER and re.fullmatch(r"\d+", tok.string):
                new = str(int(tok.string) + 1)
            else:
                continue
            if tok.string == "-" and col > 0 and line[:col].rstrip()[-1:] in "([=,:" :
                continue  # unary minus
            if tok.string == "*" and line[col:col + 2] == "**":
                continue
            mutated = line[:col] + new + line[ecol:]
            cands.append(Mutant(
                id=f"auto:{rel}:{row}:{col}:{tok.string}->{new}", file=rel, old=line,
                new=mutated, rule=f"mechanical: {tok.string} -> {new} at line {row}",
                tests=tests_for(rel), auto=True, line=row))
    rng = random.Random(seed)
    rng.shuffle(cands)
    # one mutant per line at most, so the sample spreads over the code
    seen, out = set(), []
    for m in cands:
        key = (m.file, m.old)
        if key in seen or (m.file, m.old.strip()) in seen:
            continue
        seen.add(key)
        out.append(m)
        if len(out) >= n:
            break
    return out


# ------------------------------------------------------------------------------------ workers


def repo_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


class Worker:
    """A private copy of the repository with its own Numba cache."""

    def __init__(self, base: Path, k: int, files: list[str]):
        self.dir = base / f"w{k}"
        self.repo = self.dir / "repo"
        for f in files:
            dst = self.repo / f
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst)
        shared = ROOT.parent / "shared"  # tests look for ../shared/data
        if shared.exists():
            (self.dir / "shared").symlink_to(shared.resolve())
        self.cache = self.dir / "numba_cache"
        self.cache.mkdir()
        self.env = dict(os.environ, PYTHONPATH=str(self.repo), NUMBA_CACHE_DIR=str(self.cache),
                        MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1",
                        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
                        NUMBA_NUM_THREADS=os.environ.get("NUMBA_NUM_THREADS", "1"))

    def pytest(self, tests: list[str], timeout_s: float,
               doctest: bool = False) -> tuple[int | None, str]:
        # mapped test files that do not exist (yet) are skipped, not an error
        tests = [t for t in tests if (self.repo / t.split("::")[0]).exists()]
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--no-header", "-o", "addopts=", *(["--doctest-modules"] if doctest else []),
               *tests]
        try:
            p = subprocess.run(cmd, cwd=self.repo, env=self.env, capture_output=True,
                               text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None, ""
        return p.returncode, p.stdout[-3000:] + p.stderr[-2000:]

    def check_import(self) -> None:
        out = subprocess.run([sys.executable, "-c", "import meshnet; print(meshnet.__file__)"],
                             cwd=self.dir, env=self.env, capture_output=True, text=True)
        got = Path(out.stdout.strip() or "?").resolve()
        if not str(got).startswith(str(self.repo.resolve())):
            raise SystemExit(f"mutate: the copy is not the meshnet that Python imports "
                             f"({got}); is PYTHONPATH overridden?")

    def drop_numba_cache(self, rel: str) -> None:
        """Remove cache entries of ``rel``'s module and of every module importing it."""
        stem = Path(rel).stem
        if "@njit" not in (self.repo / rel).read_text():
            return  # no compiled code here, nothing cached can hold the old source
        stems = {stem}
        pat = re.compile(rf"^\s*(from|import)\s[^\n]*\b{re.escape(stem)}\b", re.M)
        for py in (self.repo / "meshnet").rglob("*.py"):
            if py.stem != stem and pat.search(py.read_text()):
                stems.add(py.stem)
        for f in self.cache.rglob("*"):
            if f.is_file() and f.name.split(".")[0] in stems:
                f.unlink()

    def run(self, m: Mutant, timeout_s: float) -> Result:
        path = self.repo / m.file
        t0 = time.monotonic()
        if not path.is_file():
            return Result(m.id, m.file, "stale", 0.0, m.rule, "file not found")
        original = path.read_text()
        if m.line:
            lines = original.splitlines(keepends=True)
            if m.line > len(lines) or lines[m.line - 1] != m.old:
                return Result(m.id, m.file, "stale", 0.0, m.rule,
                              f"line {m.line} changed")
            mutated = "".join(lines[:m.line - 1] + [m.new] + lines[m.line:])
        else:
            n = original.count(m.old)
            if n != 1:
                return Result(m.id, m.file, "stale", 0.0, m.rule,
                              f"snippet found {n} times (expected once)")
            mutated = original.replace(m.old, m.new)
        tests = m.tests or tests_for(m.file)
        if not tests:
            return Result(m.id, m.file, "error", 0.0, m.rule, "no tests mapped")
        st = path.stat()
        try:
            path.write_text(mutated)
            # a fresh mtime even within the same clock tick, so no cache takes it for the old
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))
            self.drop_numba_cache(m.file)
            # the mutated module's own doctests are part of the suite too
            rc, log = self.pytest([*tests, m.file], timeout_s, doctest=True)
        finally:
            path.write_text(original)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 14_000_000_000))
            self.drop_numba_cache(m.file)
        dt = time.monotonic() - t0
        if rc is None:
            return Result(m.id, m.file, "timeout", dt, m.rule, f"> {timeout_s:.0f} s")
        if rc == 0:
            return Result(m.id, m.file, "survived", dt, m.rule)
        if rc == 1:
            failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", log, re.M)
            return Result(m.id, m.file, "killed", dt, m.rule, failed[0] if failed else "")
        if rc < 0:  # the test process died (a kernel wrote out of bounds): the suite fails
            return Result(m.id, m.file, "killed", dt, m.rule, f"crashed (signal {-rc})")
        return Result(m.id, m.file, "error", dt, m.rule, f"pytest exit {rc}: {log[-400:]}")


# ------------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", action="append", default=[],
                    help="only mutants of files under this path (repeatable), e.g. "
                         "meshnet/routing or meshnet/engine.py")
    ap.add_argument("--id", action="append", default=[], help="only this mutant (repeatable)")
    ap.add_argument("--quick", nargs="?", const=12, type=int, metavar="N",
                    help="a random sample of N curated mutants (default 12)")
    ap.add_argument("--auto", type=int, default=0, metavar="N",
                    help="add N mechanical mutants of the chosen modules")
    ap.add_argument("--no-curated", action="store_true", help="run only --auto mutants")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, choices=(1, 2))
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    ap.add_argument("--baseline", action="store_true",
                    help="first run the mapped tests unmutated in every copy (they must pass)")
    ap.add_argument("--without", action="append", default=[], metavar="TEST_FILE",
                    help="leave this test file out (repeatable): measure the kill rate "
                         "before a test was added")
    ap.add_argument("--min-rate", type=float, default=0.9)
    ap.add_argument("--json", type=Path, help="write every result to this JSON file")
    ap.add_argument("--list", action="store_true", help="list the selected mutants and stop")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copies")
    args = ap.parse_args(argv)

    mods = [m.rstrip("/") for m in args.module]

    def chosen(path: str) -> bool:
        return not mods or any(path == m or path.startswith(m + "/") for m in mods)

    muts = [] if args.no_curated else [m for m in curated() if chosen(m.file)]
    if args.id and not args.auto:
        muts = [m for m in muts if m.id in args.id]
    if args.quick:
        runnable = [m for m in muts if not m.equivalent]
        muts = random.Random(args.seed).sample(runnable, min(args.quick, len(runnable)))
    if args.auto:
        files = sorted({str(p.relative_to(ROOT)) for prefix in (mods or list(MODULE_TESTS))
                        for p in ([ROOT / prefix] if prefix.endswith(".py")
                                  else (ROOT / prefix).rglob("*.py"))
                        if p.is_file() and p.name != "__init__.py"})
        muts += auto_mutants([f for f in files if tests_for(f)], args.auto, args.seed)
        if args.id:  # ids of curated and of mechanical mutants (same --auto/--seed/--module)
            muts = [m for m in muts if m.id in args.id]
    for m in muts:
        m.tests = [t for t in (m.tests or tests_for(m.file))
                   if t.split("::")[0] not in args.without]
    equivalent = [m for m in muts if m.equivalent]
    muts = [m for m in muts if not m.equivalent]
    if args.list:
        for m in muts + equivalent:
            tag = " [equivalent]" if m.equivalent else ""
            print(f"{m.id:40s} {m.file}{tag}\n    {m.rule}")
        print(f"{len(muts)} to run, {len(equivalent)} marked equivalent")
        return 0
    if not muts:
        print("mutate: no mutant selected", file=sys.stderr)
        return 2

    base = Path(tempfile.mkdtemp(prefix="meshnet-mutate-"))
    files = repo_files()
    n_workers = min(args.jobs, len(muts))
    print(f"mutate: {len(muts)} mutants, {n_workers} worker(s), copies in {base}", flush=True)
    workers = [Worker(base, k, files) for k in range(n_workers)]
    workers[0].check_import()
    try:
        if args.baseline:
            all_tests = sorted({t for m in muts for t in (m.tests or tests_for(m.file))})
            t0 = time.monotonic()
            with cf.ThreadPoolExecutor(n_workers) as ex:
                base_runs = list(ex.map(lambda w: w.pytest(all_tests, 3 * args.timeout),
                                        workers))
            for rc, log in base_runs:
                if rc != 0:
                    print(log, file=sys.stderr)
                    print(f"mutate: the unmutated tests fail (exit {rc}); fix them first",
                          file=sys.stderr)
                    return 2
            print(f"mutate: baseline passed in {time.monotonic() - t0:.0f} s "
                  f"({len(all_tests)} test files)", flush=True)
        free: queue.Queue[Worker] = queue.Queue()
        for w in workers:
            free.put(w)

        def job(m: Mutant) -> Result:
            w = free.get()
            try:
                return w.run(m, args.timeout)
            finally:
                free.put(w)

        results = []
        with cf.ThreadPoolExecutor(n_workers) as ex:
            for i, r in enumerate(ex.map(job, muts), 1):
                results.append(r)
                print(f"[{i:3d}/{len(muts)}] {r.outcome:8s} {r.seconds:6.1f}s {r.id}"
                      f"{'  ' + r.detail if r.detail and r.outcome != 'survived' else ''}",
                      flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    return report(results, equivalent, args)


def report(results: list[Result], equivalent: list[Mutant], args) -> int:
    by_mod: dict[str, dict[str, int]] = {}
    for r in results:
        parts = r.file.split("/")
        mod = parts[1] if len(parts) > 2 else parts[-1]
        d = by_mod.setdefault(mod, {})
        d[r.outcome] = d.get(r.outcome, 0) + 1
    print("\nper module: killed / timeout / survived / stale / error")
    for mod, d in sorted(by_mod.items()):
        print(f"  {mod:22s} {d.get('killed', 0):3d} {d.get('timeout', 0):3d} "
              f"{d.get('survived', 0):3d} {d.get('stale', 0):3d} {d.get('error', 0):3d}")
    killed = sum(r.outcome in ("killed", "timeout") for r in results)
    survived = [r for r in results if r.outcome == "survived"]
    stale = [r for r in results if r.outcome == "stale"]
    errors = [r for r in results if r.outcome == "error"]
    judged = killed + len(survived)
    rate = killed / judged if judged else float("nan")
    print(f"\nkill rate {killed}/{judged} = {rate:.1%} of non-equivalent mutants "
          f"({len(equivalent)} marked equivalent, {len(stale)} stale, {len(errors)} errors)")
    for title, rows in (("survivors", survived), ("stale (update tools/mutants.py)", stale),
                        ("errors", errors)):
        if rows:
            print(f"\n{title}:")
            for r in rows:
                print(f"  {r.id}  ({r.file})\n      rule: {r.rule}"
                      + (f"\n      {r.detail}" if r.detail else ""))
    if args.json:
        args.json.write_text(json.dumps({"kill_rate": rate, "results": [asdict(r) for r in
                                                                          results]}, indent=1))
    return 0 if judged and rate >= args.min_rate else 1


if __name__ == "__main__":
    sys.exit(main())
