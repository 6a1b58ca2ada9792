"""Checkpoint-interval models: Young (1974) and Daly (2006).

With checkpoints taking ``delta_s``, a mean time between failures ``mtbf_s`` (exponential),
a restart costing ``restart_s`` and ``interval_s`` of work between checkpoints:

- Young, "A first order approximation to the optimum checkpoint interval", CACM 17(9), 1974:
  ``tau = sqrt(2 delta M)``.
- Daly, "A higher order estimate of the optimum checkpoint interval for restart dumps", FGCS
  22(3), 2006: ``tau = sqrt(2 delta M) [1 + sqrt(delta / 2M) / 3 + (delta / 2M) / 9] - delta``
  for ``delta < 2M`` (else ``M``), and the expected wall time of ``T_s`` of work (failures
  also strike during checkpoints and restarts)
  ``T_w = M exp(R / M) (exp((tau + delta) / M) - 1) T_s / tau``,
  so the useful fraction (goodput) is ``T_s / T_w``.

Examples
--------
>>> round(young_interval_s(60.0, 86400.0))
3220
>>> round(daly_interval_s(60.0, 86400.0))
3180
>>> round(daly_goodput(interval_s=3180.0, delta_s=60.0, mtbf_s=86400.0, restart_s=600.0), 4)
0.9565
"""

from __future__ import annotations

import math


def young_interval_s(delta_s: float, mtbf_s: float) -> float:
    """Young's optimum compute time between checkpoints, ``sqrt(2 delta M)``."""
    return math.sqrt(2.0 * delta_s * mtbf_s)


def daly_interval_s(delta_s: float, mtbf_s: float) -> float:
    """Daly's higher-order optimum compute time between checkpoints (``M`` when
    ``delta >= 2M``)."""
    if delta_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = delta_s / (2.0 * mtbf_s)
    return math.sqrt(2.0 * delta_s * mtbf_s) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta_s


def daly_wall_time_s(work_s: float, interval_s: float, delta_s: float, mtbf_s: float,
                     restart_s: float) -> float:
    """Expected wall time to finish ``work_s`` of computation (Daly 2006, eq. 19 form)."""
    m = mtbf_s
    return (m * math.exp(restart_s / m) * math.expm1((interval_s + delta_s) / m)
            * work_s / interval_s)


def daly_goodput(interval_s: float, delta_s: float, mtbf_s: float, restart_s: float) -> float:
    """Expected share of wall time spent on work that is kept, ``T_s / T_w``."""
    return 1.0 / daly_wall_time_s(1.0, interval_s, delta_s, mtbf_s, restart_s)
