"""Link capacity: fixed per terminal, or range-dependent from a link budget.

Link budget: received power falls with the square of the range and the achievable rate is
taken proportional to it, capped at the terminal's maximum:
``rate = min(max, max * (d_ref / d)^2)``, where ``d_ref`` (``reference_range_km``) is the range up
to which the terminal still reaches its full rate.
"""

from __future__ import annotations

import numpy as np

from .reasons import UP


def capacity_bps(length_km, state, model: str, max_bps: float, reference_range_km: float):
    """Per-link rate (bps); 0 for links that are not ``UP``.

    Examples
    --------
    >>> capacity_bps(np.array([1000.0, 6000.0]), np.array([2, 2]), "link_budget", 100e9,
    ...              3000.0).tolist()
    [100000000000.0, 25000000000.0]
    """
    length_km = np.asarray(length_km, dtype=np.float64)
    up = np.asarray(state) == UP
    if model == "fixed":
        rate = np.full(length_km.shape, float(max_bps))
    elif model == "link_budget":
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.minimum(max_bps, max_bps * (reference_range_km / length_km) ** 2)
    else:
        raise ValueError(f"unknown capacity model {model!r}")
    return np.where(up, rate, 0.0)
