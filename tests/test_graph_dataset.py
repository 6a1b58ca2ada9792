"""Per-step graph arrays for learned routing: schema, physics and routes consistent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from research_scenario import write_small

from meshnet.cli import main
from meshnet.learn import SCHEMA, load_step
from meshnet.units import C_KM_S

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graphs")
    scen = write_small(tmp)
    out = tmp / "g"
    assert main(["graphs", str(scen), "--out", str(out), "-q", "--duration", "20"]) == 0
    return out


def test_schema_and_files(graphs):
    meta = json.loads((graphs / "schema.json").read_text())
    assert meta["steps"] == 10 and len(meta["node_names"]) == 147
    files = sorted(graphs.glob("step_*.npz"))
    assert len(files) == 10
    a = load_step(files[3])
    assert set(a) == set(SCHEMA) == set(meta["arrays"])
    for name, (dtype, _, _) in SCHEMA.items():
        assert a[name].dtype == np.dtype(dtype), name
    n, m, k = a["node_kind"].shape[0], a["edge_index"].shape[1], a["demand_src"].shape[0]
    assert a["node_pos_km"].shape == (n, 3) and a["edge_length_km"].shape == (m,)
    assert a["route_indptr"].shape == (k + 1,)
    assert float(a["t_s"]) == pytest.approx(6.0)


def test_physics_and_consistency(graphs):
    for f in sorted(graphs.glob("step_*.npz")):
        a = load_step(f)
        sat = a["node_kind"] == 0
        r = np.linalg.norm(a["node_pos_km"][sat], axis=1)
        assert np.all(np.abs(r - 6921) < 30)  # 550 km shell over a ~6371 km Earth
        v = np.linalg.norm(a["node_vel_km_s"][sat], axis=1)
        assert np.all((v > 6.5) & (v < 8.0))  # orbital speed in the Earth-fixed frame
        np.testing.assert_allclose(a["edge_delay_s"], a["edge_length_km"] / C_KM_S)
        # both directions of every link
        ei = a["edge_index"]
        m2 = ei.shape[1] // 2
        np.testing.assert_array_equal(ei[0, :m2], ei[1, m2:])
        up = a["edge_state"] == 2
        assert np.all(a["edge_capacity_bps"][~up] == 0)
        assert np.all(a["edge_load_bps"] <= a["edge_capacity_bps"] * (1 + 1e-9) + 1e-3)
        assert np.all(a["demand_rate_bps"] <= np.where(np.isfinite(a["demand_bps"]),
                                                       a["demand_bps"], np.inf) * (1 + 1e-9))
        # primary routes: connected paths over up edges from source to destination, and with
        # one path per pair (shortest_delay) the edge loads are exactly the routed rates
        ptr, edges = a["route_indptr"], a["route_edges"]
        for p in range(a["demand_src"].shape[0]):
            e = edges[ptr[p]:ptr[p + 1]]
            if e.size == 0:
                continue
            assert up[e].all()
            assert ei[0, e[0]] == a["demand_src"][p] and ei[1, e[-1]] == a["demand_dst"][p]
            np.testing.assert_array_equal(ei[1, e[:-1]], ei[0, e[1:]])
        load = np.bincount(edges, weights=np.repeat(a["demand_rate_bps"], np.diff(ptr)),
                           minlength=ei.shape[1])
        np.testing.assert_allclose(load, a["edge_load_bps"], rtol=1e-6, atol=1.0)
        assert a["edge_load_bps"].sum() > 0


def test_pyg_loader(graphs):
    pytest.importorskip("torch_geometric")
    sys.path.insert(0, str(EXAMPLES))
    try:
        import pyg_loader
    finally:
        sys.path.remove(str(EXAMPLES))
    ds = pyg_loader.MeshnetGraphs(graphs)
    d = ds[0]
    assert d.x.shape == (147, 9) and d.edge_index.shape[0] == 2
    assert d.edge_attr.shape == (d.edge_index.shape[1], 6)
