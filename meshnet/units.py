"""Physical constants, dtypes and sentinels shared by every module.

Units are part of every name: ``range_km``, ``delay_s``, ``capacity_bps``, ``t_ns``.
"""

from __future__ import annotations

import numpy as np

#: Speed of light in vacuum.
C_M_S = 299_792_458.0
C_KM_S = C_M_S / 1000.0

#: Earth equatorial radius used for link geometry (WGS72, as SGP4 and Hypatia use it).
R_EARTH_KM = 6378.135

#: Standard gravitational parameter of the Earth (WGS72, SGP4's value).
MU_EARTH_KM3_S2 = 398_600.8

#: Nanoseconds per second: the clock is an int64 nanosecond offset from the scenario epoch.
NS_PER_S = 1_000_000_000

#: Sentinel for "no path" / "no predecessor" in routing outputs.
NO_PATH = -1

#: Node ids and link endpoints.
NODE_DTYPE = np.int32
#: Positions, lengths, rates.
FLOAT_DTYPE = np.float64

SECONDS_PER_DAY = 86_400.0
