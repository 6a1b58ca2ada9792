"""PNG plots of a run: step time, link utilisation, job throughput, and a map of the mesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def write_plots(out_dir, stats, job_rows, map_frame, world, compute_nodes=None) -> list[Path]:
    """Write the four standard plots into ``out_dir`` and return their paths."""
    out_dir = Path(out_dir)
    paths = [
        plot_step_times(out_dir / "step_time.png", job_rows),
        plot_utilisation(out_dir / "link_utilisation.png", stats.util_hist,
                         stats.busy_link_steps),
        plot_throughput(out_dir / "job_throughput.png", job_rows),
    ]
    if map_frame is not None:
        paths.append(plot_mesh_map(out_dir / "mesh_map.png", map_frame, world, compute_nodes))
    return paths


def _by_job(job_rows):
    jobs: dict[str, list] = {}
    for r in job_rows:
        jobs.setdefault(r["job"], []).append(r)
    return jobs


def plot_step_times(path, job_rows) -> Path:
    """Training step time against the time the step ended, one line per job."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for name, rows in _by_job(job_rows).items():
        t = np.array([r["end_s"] for r in rows])
        st = np.array([r["step_time_s"] for r in rows])
        (line,) = ax.plot(t, st, marker=".", label=f"{name}")
        ideal = np.array([r["ideal_step_time_s"] for r in rows])
        if np.isfinite(ideal).any():
            ax.plot(t, ideal, ls="--", color=line.get_color(), alpha=0.6,
                    label=f"{name} (ideal mesh)")
    ax.set_xlabel("time since epoch [s]")
    ax.set_ylabel("training step time [s]")
    ax.set_title("Training step time over the run")
    ax.set_ylim(bottom=0)
    if job_rows:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no training steps completed", transform=ax.transAxes, ha="center")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_utilisation(path, util_hist, busy_link_steps: int) -> Path:
    """Distribution of the utilisation of every ISL that was up, over all steps.

    ``util_hist`` counts link-steps in equal bins over [0, 1], accumulated during the run
    (so the plot costs no pass over the dataset, whatever the run's length).
    """
    plt = _pyplot()
    hist = np.asarray(util_hist)
    total = int(hist.sum())
    edges = np.linspace(0.0, 100.0, hist.shape[0] + 1)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if total:
        ax.bar(edges[:-1], hist, width=np.diff(edges), align="edge", color="#3a7ebf", log=True)
        ax.set_title(f"ISL utilisation ({total:,} link-steps up; "
                     f"{100 * busy_link_steps / total:.1f} % carried traffic)")
    ax.set_xlabel("utilisation [% of capacity, busier direction]")
    ax.set_ylabel("link-steps")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_throughput(path, job_rows) -> Path:
    """Achieved algorithm bandwidth per training step, one line per job."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for name, rows in _by_job(job_rows).items():
        t = np.array([r["end_s"] for r in rows])
        bw = np.array([r.get("algbw_gbps", np.nan) for r in rows], dtype=float)
        ax.plot(t, bw, marker=".", label=name)
    ax.set_xlabel("time since epoch [s]")
    ax.set_ylabel("algorithm bandwidth [Gbps]")
    ax.set_title("Throughput per job (collective bytes / communication time)")
    ax.set_ylim(bottom=0)
    if job_rows:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_mesh_map(path, frame, world, compute_nodes=None) -> Path:
    """Latitude/longitude map of the mesh at one instant, links coloured by utilisation.

    ``compute_nodes`` (node ids) are marked, so the training job's place in the mesh shows.
    """
    from matplotlib.collections import LineCollection

    from .orbits.propagate import ecef_to_geodetic

    plt = _pyplot()
    r_sat = np.asarray(frame["r_km"])
    lat, lon, _ = ecef_to_geodetic(r_sat)
    lat_g = np.asarray(world.ground.lat_deg, dtype=float)
    lon_g = np.asarray(world.ground.lon_deg, dtype=float)
    all_lat = np.concatenate([lat, lat_g])
    all_lon = np.concatenate([lon, lon_g])
    a, b = np.asarray(frame["a"]), np.asarray(frame["b"])
    util = np.asarray(frame["util"])
    # Links that cross the antimeridian would be drawn across the whole map: skip them.
    ok = np.flatnonzero(np.abs(all_lon[a] - all_lon[b]) < 180)
    ok = ok[np.argsort(util[ok], kind="stable")]  # busy links drawn last, on top
    segs = np.stack([np.stack([all_lon[a], all_lat[a]], -1),
                     np.stack([all_lon[b], all_lat[b]], -1)], axis=1)[ok]
    fig, ax = plt.subplots(figsize=(11, 5.8), dpi=110)
    umax = max(1e-9, float(util.max(initial=0)))
    lc = LineCollection(segs, cmap="plasma", linewidths=0.5 + 2.5 * util[ok] / umax)
    lc.set_array(100 * util[ok])
    lc.set_clim(0, max(1e-9, 100 * float(util.max(initial=0))))
    ax.add_collection(lc)
    ax.scatter(lon, lat, s=2, color="0.4", label="satellites", zorder=2)
    if lat_g.size:
        ax.scatter(lon_g, lat_g, s=10, marker="^", color="tab:green", label="ground stations",
                   zorder=3)
    if compute_nodes is not None and len(compute_nodes):
        ids = np.asarray(compute_nodes)
        ax.scatter(all_lon[ids], all_lat[ids], s=14, marker="*", color="tab:red",
                   label="compute nodes", zorder=4)
    # Fault marks (runs with [faults]): failed satellites, and those with lasers down.
    for key, marker, color, label in (("lasers_down", "o", "tab:orange", "lasers down"),
                                      ("failed", "x", "black", "failed satellites")):
        ids = np.asarray(frame.get(key, ()), dtype=np.int64)
        if ids.size:
            ax.scatter(lon[ids], lat[ids], s=16, marker=marker, facecolors="none"
                       if marker == "o" else color, edgecolors=color, linewidths=0.8,
                       label=f"{label} ({ids.size})", zorder=5)
    fig.colorbar(lc, ax=ax, label="link utilisation [%]", shrink=0.8)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xlabel("longitude [deg]")
    ax.set_ylabel("latitude [deg]")
    ax.set_title(f"Laser mesh at t = {frame['t_s']:.0f} s ({len(a):,} links up)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
