"""Chakra execution traces in (their documented JSON form): per-rank graphs as ops.

Chakra (MLCommons) stores execution traces as protobuf (``et_def.proto``); its Python package
is not on PyPI (``pip download chakra`` finds no distribution; it installs from the GitHub
repository), so meshnet reads the JSON form that Chakra's ``chakra_jsonizer`` writes (the
protobuf JSON mapping of the same messages). A trace is a folder with one file per rank,
``<name>.<rank>.json``, each ``{"nodes": [...]}`` (a top-level list of nodes works too) with
nodes like::

    {"id": 3, "name": "allreduce_grad", "type": "COMM_COLL_NODE",
     "data_deps": [2], "ctrl_deps": [], "duration_micros": 0,
     "attr": [{"name": "comm_type", "int64_val": 0},
              {"name": "comm_size", "int64_val": 1048576},
              {"name": "pg_name", "string_val": "dp"}]}

Field names may be snake_case or camelCase (``dataDeps``, ``durationMicros``, ``int64Val``);
``type`` and ``comm_type`` may be names or the enum numbers of ``et_def.proto``
(``COMP_NODE`` = 4, ``COMM_SEND_NODE`` = 5, ``COMM_RECV_NODE`` = 6, ``COMM_COLL_NODE`` = 7;
``ALL_REDUCE`` = 0, ``REDUCE`` = 1, ``ALL_GATHER`` = 2, ``BROADCAST`` = 5, ``ALL_TO_ALL`` = 6,
``REDUCE_SCATTER`` = 7). Mapping onto meshnet:

- ``COMP_NODE``: a computation of ``duration_micros`` on its rank (other node types with a
  duration, e.g. memory nodes, count as computation too; metadata nodes are skipped);
- ``COMM_COLL_NODE``: the k-th collective of process group ``pg_name`` on every rank that has
  that group is one collective over those ranks (no ``pg_name``: all ranks); it starts when
  every rank's dependencies are met; its ``comm_size`` is nccl-tests' size;
- ``COMM_SEND_NODE`` / ``COMM_RECV_NODE`` with ``comm_src``, ``comm_dst``, ``comm_tag``: a send
  and the matching receive are one SendRecv of ``comm_size`` bytes.

Computations of one rank run one at a time in dependency order; collectives run on their own
stream per process group, sends and receives on a ``p2p`` stream.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import MeshnetError
from .ops import Op, OpList, coll

NODE_TYPES = {0: "INVALID_NODE", 1: "METADATA_NODE", 2: "MEM_LOAD_NODE", 3: "MEM_STORE_NODE",
              4: "COMP_NODE", 5: "COMM_SEND_NODE", 6: "COMM_RECV_NODE", 7: "COMM_COLL_NODE"}
COMM_TYPES = {0: "AllReduce", 1: "Reduce", 2: "AllGather", 5: "Broadcast", 6: "AllToAll",
              7: "ReduceScatter", 8: "ReduceScatter"}
_NAMES = {"ALL_REDUCE": "AllReduce", "REDUCE": "Reduce", "ALL_GATHER": "AllGather",
          "BROADCAST": "Broadcast", "ALL_TO_ALL": "AllToAll", "REDUCE_SCATTER": "ReduceScatter",
          "REDUCE_SCATTER_BLOCK": "ReduceScatter"}


def _get(node: dict, *names, default=None):
    for n in names:
        if n in node:
            return node[n]
    return default


def _attrs(node: dict) -> dict:
    out = {}
    for a in node.get("attr", []) or []:
        vals = [v for k, v in a.items() if k != "name"]
        out[a.get("name")] = vals[0] if vals else None
    return out


def load_rank_files(folder) -> dict[int, list[dict]]:
    """``{rank: nodes}`` from the ``<name>.<rank>.json`` files of ``folder``."""
    folder = Path(folder)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else [folder]
    out: dict[int, list[dict]] = {}
    for f in files:
        m = re.search(r"\.(\d+)\.json$", f.name)
        if not m:
            raise MeshnetError(f"{f}: Chakra JSON files are named <name>.<rank>.json "
                               "(e.g. et.0.json)")
        try:
            data = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MeshnetError(f"{f}: not a readable Chakra JSON trace ({exc})") from None
        nodes = data.get("nodes") if isinstance(data, dict) else data
        if not isinstance(nodes, list):
            raise MeshnetError(f"{f}: expected {{\"nodes\": [...]}} or a list of nodes")
        out[int(m.group(1))] = nodes
    if not out:
        raise MeshnetError(f"{folder}: no Chakra trace files <name>.<rank>.json")
    ranks = sorted(out)
    if ranks != list(range(len(ranks))):
        raise MeshnetError(f"{folder}: ranks {ranks[:5]}... must be 0..{len(ranks) - 1}, one "
                           "file each")
    return out


def _node_type(node, f) -> str:
    t = _get(node, "type", default="COMP_NODE")
    if isinstance(t, (int, float)) or (isinstance(t, str) and t.isdigit()):
        t = NODE_TYPES.get(int(t), "INVALID_NODE")
    return str(t)


def _topo(nodes: list[dict], where: str) -> list[dict]:
    """Nodes in dependency order (stable); a cycle is an error."""
    by_id = {}
    for n in nodes:
        by_id[int(_get(n, "id"))] = n
    deps = {i: [int(d) for d in (_get(n, "data_deps", "dataDeps", default=[]) or [])
                + (_get(n, "ctrl_deps", "ctrlDeps", default=[]) or []) if int(d) in by_id]
            for i, n in by_id.items()}
    done, out = set(), []
    pending = list(by_id)
    while pending:
        rest = []
        for i in pending:
            if all(d in done for d in deps[i]):
                done.add(i)
                out.append(by_id[i])
            else:
                rest.append(i)
        if len(rest) == len(pending):
            raise MeshnetError(f"{where}: dependency cycle among nodes {rest[:5]}")
        pending = rest
    return out


def read_ops(path, time_unit_s: float | None = None):
    """Ops of a Chakra JSON trace folder; returns (OpList, world size, shape)."""
    unit = 1e-6 if time_unit_s is None else float(time_unit_s)
    per_rank = load_rank_files(path)
    world = len(per_rank)
    order = {r: _topo(nodes, f"{path} rank {r}") for r, nodes in per_rank.items()}
    pg_ranks: dict = {}
    for r, nodes in order.items():
        for n in nodes:
            if _node_type(n, path) == "COMM_COLL_NODE":
                pg = str(_attrs(n).get("pg_name", "world"))
                pg_ranks.setdefault(pg, set()).add(r)
    ops = OpList()
    op_of: dict = {}  # (rank, node id) -> op id (None: metadata)
    coll_index: dict = {}  # (rank, node id) -> (pg, k): k-th collective of pg on the rank
    for r, nodes in order.items():
        seen: dict = {}
        for n in nodes:
            if _node_type(n, path) == "COMM_COLL_NODE":
                pg = str(_attrs(n).get("pg_name", "world"))
                coll_index[(r, int(_get(n, "id")))] = (pg, seen.get(pg, 0))
                seen[pg] = seen.get(pg, 0) + 1
    left = {r: list(nodes) for r, nodes in order.items()}
    arrived: dict = {}  # (pg, k) -> {rank: (node, deps)}
    p2p: dict = {}  # (src, dst, tag) -> {"send": ..., "recv": ...}

    def dep_ids(r, n):
        return [int(d) for d in (_get(n, "data_deps", "dataDeps", default=[]) or [])
                + (_get(n, "ctrl_deps", "ctrlDeps", default=[]) or [])]

    known = {r: {int(_get(n, "id")) for n in nodes} for r, nodes in order.items()}
    while any(left.values()):
        progressed = False
        for r in order:
            keep = []
            for n in left[r]:
                nid = int(_get(n, "id"))
                ds = [d for d in dep_ids(r, n) if d in known[r]]
                if (r, nid) in op_of:
                    continue
                if any((r, d) not in op_of for d in ds):
                    keep.append(n)
                    continue
                deps = [op_of[(r, d)] for d in ds]
                t = _node_type(n, path)
                a = _attrs(n)
                name = str(_get(n, "name", default=f"node {nid}"))
                if t == "COMM_COLL_NODE":
                    pg, k = coll_index[(r, nid)]
                    got = arrived.setdefault((pg, k), {})
                    got[r] = (n, deps)
                    if len(got) == len(pg_ranks[pg]):
                        ranks = sorted(got)
                        op = _comm_type(a.get("comm_type", 0), path, r, nid)
                        size = float(a.get("comm_size", 0) or 0)
                        all_deps = [d for _, ds2 in got.values() for d in ds2]
                        oid = ops.add(Op(name, pg if pg in ("tp", "dp", "pp", "ep") else "dp",
                                         tuple(ranks), stream=f"coll:{pg}",
                                         colls=[coll(op, ranks, size)]), deps=all_deps)
                        for rr, (nn, _) in got.items():
                            op_of[(rr, int(_get(nn, "id")))] = oid
                        progressed = True
                    else:
                        keep.append(n)
                    continue
                if t in ("COMM_SEND_NODE", "COMM_RECV_NODE"):
                    src = int(a.get("comm_src", r if t == "COMM_SEND_NODE" else -1))
                    dst = int(a.get("comm_dst", r if t == "COMM_RECV_NODE" else -1))
                    entry = p2p.setdefault((src, dst, a.get("comm_tag", 0)), {})
                    entry["send" if t == "COMM_SEND_NODE" else "recv"] = (r, nid, deps, n)
                    if "send" in entry and "recv" in entry:
                        s_r, s_id, s_deps, s_n = entry["send"]
                        r_r, r_id, r_deps, _ = entry["recv"]
                        size = float(_attrs(s_n).get("comm_size", 0) or 0)
                        oid = ops.add(Op(str(_get(s_n, "name", default="send")), "pp",
                                         (s_r, r_r), stream="p2p",
                                         colls=[coll("SendRecv", [s_r, r_r], size,
                                                     pairs=[[s_r, r_r]])]),
                                      deps=s_deps + r_deps)
                        op_of[(s_r, s_id)] = op_of[(r_r, r_id)] = oid
                        progressed = True
                    else:
                        keep.append(n)
                    continue
                if t == "METADATA_NODE":
                    op_of[(r, nid)] = None
                else:
                    dur = float(_get(n, "duration_micros", "durationMicros", default=0) or 0)
                    op_of[(r, nid)] = ops.add(Op(name, "compute", (r,), duration_s=dur * unit),
                                              deps=deps)
                progressed = True
            left[r] = [n for n in keep if (r, int(_get(n, "id"))) not in op_of]
        if not progressed:
            stuck = {r: left[r][0].get("name") for r in order if left[r]}
            raise MeshnetError(f"{path}: the ranks' communication does not match (ranks "
                               f"waiting at {dict(list(stuck.items())[:4])}); every rank of a "
                               "process group must issue its collectives in the same order, "
                               "and every send needs its receive")
    return ops, world, f"{world} ranks, {len(ops)} ops"


def _comm_type(value, path, rank, nid) -> str:
    if isinstance(value, str) and not value.isdigit():
        name = _NAMES.get(value.upper())
    else:
        name = COMM_TYPES.get(int(value))
    if name is None:
        raise MeshnetError(f"{path}: rank {rank} node {nid}: comm_type {value!r} is not a "
                           "collective meshnet moves (ALL_REDUCE, REDUCE, ALL_GATHER, BROADCAST,"
                           " ALL_TO_ALL, REDUCE_SCATTER)")
    return name
