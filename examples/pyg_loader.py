"""Load ``meshnet graphs`` output into PyTorch Geometric (optional extra: torch,
torch_geometric; ``pip install 'meshnet[learn]'``).

    meshnet graphs starlink_550_training --duration 600 --out graphs/
    python examples/pyg_loader.py graphs/

Each step becomes a ``torch_geometric.data.Data`` with

- ``x`` (n, 9): position (3, in 1000 km), velocity (3, km/s), is-ground, is-up, degree/4;
- ``edge_index`` (2, m) and ``edge_attr`` (m, 6): length (1000 km), delay (ms), capacity
  (100 Gbps), load (100 Gbps), is-up, is-down-for-a-reason;
- ``demand_index`` (2, k), ``demand`` (k,) offered Gbps (elastic: -1), ``rate`` (k,) carried
  Gbps: the targets a learned router can imitate or improve on;
- ``t_s``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def to_data(arrays: dict):
    """One step's arrays (meshnet.learn.load_step) as a PyTorch Geometric ``Data``."""
    import torch
    from torch_geometric.data import Data

    n = arrays["node_kind"].shape[0]
    deg = np.bincount(arrays["edge_index"][0][arrays["edge_state"] == 2], minlength=n)
    x = np.column_stack([arrays["node_pos_km"] / 1e3, arrays["node_vel_km_s"],
                         arrays["node_kind"] == 1, arrays["node_state"] == 1, deg / 4.0])
    edge_attr = np.column_stack([
        arrays["edge_length_km"] / 1e3, arrays["edge_delay_s"] * 1e3,
        arrays["edge_capacity_bps"] / 100e9, arrays["edge_load_bps"] / 100e9,
        arrays["edge_state"] == 2, arrays["edge_reason"] != 0])
    demand = np.where(np.isfinite(arrays["demand_bps"]), arrays["demand_bps"] / 1e9, -1.0)
    return Data(
        x=torch.as_tensor(x, dtype=torch.float32),
        edge_index=torch.as_tensor(arrays["edge_index"].astype(np.int64)),
        edge_attr=torch.as_tensor(edge_attr, dtype=torch.float32),
        demand_index=torch.as_tensor(np.stack([arrays["demand_src"],
                                               arrays["demand_dst"]]).astype(np.int64)),
        demand=torch.as_tensor(demand, dtype=torch.float32),
        rate=torch.as_tensor(arrays["demand_rate_bps"] / 1e9, dtype=torch.float32),
        t_s=float(arrays["t_s"]),
    )


class MeshnetGraphs:
    """A map-style dataset over a ``meshnet graphs`` folder (usable with PyG's DataLoader)."""

    def __init__(self, folder):
        self.files = sorted(Path(folder).glob("step_*.npz"))
        if not self.files:
            raise FileNotFoundError(f"{folder}: no step_*.npz (run `meshnet graphs` first)")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        from meshnet.learn import load_step

        return to_data(load_step(self.files[i]))


if __name__ == "__main__":  # pragma: no cover
    from torch_geometric.loader import DataLoader

    ds = MeshnetGraphs(sys.argv[1])
    batch = next(iter(DataLoader(ds, batch_size=4)))
    print(f"{len(ds)} steps; first batch: {batch}")
