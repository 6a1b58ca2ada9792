"""The clock: an int64 nanosecond offset from the scenario epoch.

Floats of seconds appear only at the edges (CLI, plots); Julian dates only at the SGP4
boundary. Steps are ``t = 0, step, 2 step, ...`` strictly below ``duration`` as in Hypatia
(200 s at 100 ms is 2,000 steps).

Rules for a grid (one place, used by scenario files and ``--duration``/``--step`` alike): both
must be finite and positive, the step must be at least one nanosecond after rounding, and the
step may not exceed the duration (``step == duration`` gives the single sample ``t = 0``).
Instants must lie within the JPL DE421 ephemeris shipped with skyfield-data
(:data:`EPHEMERIS_START` to :data:`EPHEMERIS_END`), which the Sun direction needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .errors import MeshnetError
from .units import NS_PER_S

_JD_UNIX_EPOCH = 2440587.5

#: Coverage of de421.bsp (skyfield-data), which gives the Sun's direction for every run.
EPHEMERIS_START = datetime(1899, 7, 30, tzinfo=UTC)
EPHEMERIS_END = datetime(2053, 10, 8, tzinfo=UTC)


def check_time_range(epoch: datetime, duration_s: float, where: str) -> None:
    """Refuse a run that starts or ends outside the ephemeris (one line naming ``where``)."""
    from datetime import timedelta

    epoch = _as_utc(epoch)
    if epoch < EPHEMERIS_START or epoch > EPHEMERIS_END:
        raise MeshnetError(
            f"{where}: epoch {epoch.isoformat()} is outside the ephemeris shipped with "
            f"skyfield-data ({EPHEMERIS_START.date()} to {EPHEMERIS_END.date()}); "
            "choose an epoch in that range")
    try:
        end = epoch + timedelta(seconds=float(duration_s))
    except OverflowError:
        end = datetime.max.replace(tzinfo=UTC)
    if end > EPHEMERIS_END:
        raise MeshnetError(
            f"{where}: the run ends after {EPHEMERIS_END.date()}, the end of the ephemeris "
            "shipped with skyfield-data; shorten the duration or move the epoch")


def check_seconds(value, option: str) -> float:
    """``value`` as a finite positive number of seconds, or a one-line error for ``option``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MeshnetError(f"{option} expects seconds, found {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise MeshnetError(f"{option} must be a finite number of seconds > 0, found {value}")
    if value > 1e12:  # 30,000 years: an exponent typo, and beyond int64 nanoseconds
        raise MeshnetError(f"{option} = {value:g} s is absurd (at most 1e12 s); "
                           "check the exponent")
    return value


def seconds_to_ns(seconds: float) -> int:
    """Round a duration in seconds to whole nanoseconds.

    Examples
    --------
    >>> seconds_to_ns(0.1)
    100000000
    """
    return int(round(float(seconds) * NS_PER_S))


@dataclass(frozen=True)
class TimeGrid:
    """Sample times of a run.

    Parameters
    ----------
    epoch : datetime
        Time zero, timezone-aware UTC.
    t_ns : numpy.ndarray
        int64 nanosecond offsets from ``epoch``, increasing.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> grid = TimeGrid.from_duration(datetime(2000, 1, 1, tzinfo=UTC), 200.0, 0.1)
    >>> len(grid), float(grid.t_s[1])
    (2000, 0.1)
    """

    epoch: datetime
    t_ns: np.ndarray

    @classmethod
    def from_duration(cls, epoch: datetime, duration_s: float, step_s: float,
                      start_s: float = 0.0) -> TimeGrid:
        """Steps ``start, start + step, ...`` strictly below ``duration_s``."""
        step_s = check_seconds(step_s, "step")
        duration_s = check_seconds(duration_s, "duration")
        step_ns = seconds_to_ns(step_s)
        duration_ns = seconds_to_ns(duration_s)
        start_ns = seconds_to_ns(start_s)
        if step_ns <= 0:
            raise MeshnetError(f"step {step_s} s rounds to zero nanoseconds; "
                               "the clock counts whole nanoseconds, use a step >= 1e-9 s")
        if duration_ns <= start_ns:
            raise MeshnetError(f"duration must exceed start, got duration {duration_s} s")
        if step_ns > duration_ns - start_ns:
            raise MeshnetError(f"step {step_s:g} s is longer than the duration "
                               f"{(duration_ns - start_ns) / NS_PER_S:g} s; give a step <= the "
                               "duration (equal gives the single sample t = 0)")
        n_steps = math.ceil((duration_ns - start_ns) / step_ns)
        t_ns = start_ns + step_ns * np.arange(n_steps, dtype=np.int64)
        return cls(epoch=_as_utc(epoch), t_ns=t_ns)

    def __len__(self) -> int:
        return int(self.t_ns.shape[0])

    def __getitem__(self, index) -> TimeGrid:
        """A sub-grid (slice or index array) with the same epoch."""
        t = np.atleast_1d(self.t_ns[index]).astype(np.int64)
        return TimeGrid(self.epoch, t)

    @property
    def t_s(self) -> np.ndarray:
        """Offsets in seconds (float64), for display and plots."""
        return self.t_ns / NS_PER_S

    @property
    def step_ns(self) -> int:
        """Spacing of the first two samples (0 for a single sample)."""
        return int(self.t_ns[1] - self.t_ns[0]) if len(self) > 1 else 0

    def datetime64(self) -> np.ndarray:
        """UTC instants as ``datetime64[ns]`` (no time zone attached)."""
        base = np.datetime64(self.epoch.replace(tzinfo=None), "ns")
        return base + self.t_ns.astype("timedelta64[ns]")

    def jd_utc(self) -> tuple[np.ndarray, np.ndarray]:
        """UTC Julian dates split into whole and fraction, as SGP4 takes them.

        The split keeps nanosecond resolution: the whole part is the epoch's day, the fraction
        carries the offset.
        """
        epoch_s = self.epoch.timestamp()
        epoch_days = epoch_s / 86400.0
        whole = math.floor(_JD_UNIX_EPOCH + epoch_days)
        base_fr = (_JD_UNIX_EPOCH - whole) + epoch_days
        fr = base_fr + self.t_ns / (NS_PER_S * 86400.0)
        jd = np.full(len(self), float(whole))
        return jd, fr

    def skyfield_times(self, ts):
        """These instants as a skyfield ``Time`` array built from ``ts`` (a Timescale)."""
        e = self.epoch
        seconds = e.second + e.microsecond * 1e-6 + self.t_ns / NS_PER_S
        return ts.utc(e.year, e.month, e.day, e.hour, e.minute, seconds)


def _as_utc(epoch: datetime) -> datetime:
    if epoch.tzinfo is None:
        return epoch.replace(tzinfo=UTC)
    return epoch.astimezone(UTC)


def parse_epoch(text: str) -> datetime:
    """Parse an ISO 8601 instant; naive values are taken as UTC.

    Examples
    --------
    >>> parse_epoch("2000-01-01T00:00:00Z").isoformat()
    '2000-01-01T00:00:00+00:00'
    """
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return _as_utc(value)
