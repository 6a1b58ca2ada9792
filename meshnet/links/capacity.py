"""Link capacity: fixed per terminal, range-dependent, or the rung of a rate ladder that the
optical link budget closes.

``fixed``
    Every UP link carries ``capacity_bps``.
``link_budget``
    Received power falls with the square of the range and the achievable rate is taken
    proportional to it, capped at the terminal's maximum:
    ``rate = min(max, max * (d_ref / d)^2)``, where ``d_ref`` (``reference_range_km``) is the
    range up to which the terminal still reaches its full rate.
``rate_ladder``
    A :class:`LinkBudget` (transmit power, apertures, divergence, pointing and optics losses,
    receiver sensitivity) gives the received power of every link; the link carries the highest
    rung of a rate ladder whose sensitivity plus margin that power meets. Gaussian beam of
    1/e^2 half-angle divergence ``theta`` and waist ``w0 = lambda / (pi theta)``, centred on a
    circular receive aperture of diameter ``D_r`` at range ``d``: the aperture collects
    ``1 - exp(-D_r^2 / (2 w^2))`` of the beam, ``w^2 = w0^2 + (theta d)^2`` (Siegman, *Lasers*,
    1986, on Gaussian beams). In the far field (``w >> D_r``) this is the textbook
    ``P_r = P_t eta D_r^2 / (2 theta^2 d^2)``; in the near field (short formation links, beam
    narrower than the aperture) it saturates below ``P_t eta``. The sensitivity is given at a
    reference rate and scales with the rate (constant energy per bit). A link whose lowest rung
    does not close is not UP: the budget's reach (:meth:`LinkBudget.reach_km`) caps the
    feasible range (reason ``out_of_range``), see :mod:`meshnet.links.feasibility`.

Examples
--------
>>> capacity_bps(np.array([1000.0, 6000.0]), np.array([2, 2]), "link_budget", 100e9,
...              3000.0).tolist()
[100000000000.0, 25000000000.0]
>>> sl = BUDGET_PRESETS["starlink_100g"]
>>> (sl.rate_bps(np.array([1000.0, 3000.0, 5400.0])) / 1e9).tolist()
[200.0, 200.0, 100.0]
>>> round(float(sl.received_power_dbm(5400.0)), 2)
-31.41
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .reasons import UP

#: Capacity models (``[links].capacity_model``).
CAPACITY_MODELS = ("fixed", "link_budget", "rate_ladder")


@dataclass(frozen=True)
class LinkBudget:
    """Optical link budget of one terminal type (both ends alike), and its rate ladder.

    Attributes
    ----------
    tx_power_w : float
        Optical power launched by the transmitter (all wavelengths together).
    wavelength_nm : float
        Carrier wavelength (sets the diffraction-limited divergence and the waist).
    tx_aperture_mm, rx_aperture_mm : float
        Transmit and receive aperture diameters. The transmit aperture sets the divergence
        when ``divergence_urad`` is None (beam waist ``w0 = D_t / 2``).
    divergence_urad : float or None
        1/e^2 half-angle beam divergence; None: diffraction-limited,
        ``theta = lambda / (pi D_t / 2)``.
    pointing_loss_db : float
        Mean loss from residual mispointing of both terminals.
    optics_loss_db : float
        Transmit and receive optics, coupling, aperture truncation and other losses.
    sensitivity_dbm : float
        Received power needed at ``sensitivity_ref_bps`` (at the FEC threshold).
    sensitivity_ref_bps : float
        Rate at which ``sensitivity_dbm`` is given; the need scales as ``rate / ref``.
    margin_db : float
        Extra power a rung must have above its sensitivity to be used.
    rates_bps : tuple of float
        The rate ladder, strictly increasing.
    """

    tx_power_w: float
    wavelength_nm: float
    tx_aperture_mm: float
    rx_aperture_mm: float
    divergence_urad: float | None
    pointing_loss_db: float
    optics_loss_db: float
    sensitivity_dbm: float
    sensitivity_ref_bps: float
    margin_db: float
    rates_bps: tuple[float, ...]

    @property
    def divergence_rad(self) -> float:
        """1/e^2 half-angle divergence ``theta`` (given, or diffraction-limited)."""
        if self.divergence_urad is not None:
            return self.divergence_urad * 1e-6
        return self.wavelength_nm * 1e-9 / (math.pi * self.tx_aperture_mm * 1e-3 / 2.0)

    @property
    def waist_m(self) -> float:
        """Beam waist radius ``w0 = lambda / (pi theta)`` of a Gaussian beam of divergence
        ``theta``."""
        return self.wavelength_nm * 1e-9 / (math.pi * self.divergence_rad)

    @property
    def tx_power_dbm(self) -> float:
        return 10.0 * math.log10(self.tx_power_w * 1e3)

    @property
    def thresholds_dbm(self) -> np.ndarray:
        """Received power each rung needs: sensitivity scaled by rate, plus the margin."""
        rates = np.asarray(self.rates_bps, dtype=np.float64)
        return (self.sensitivity_dbm + 10.0 * np.log10(rates / self.sensitivity_ref_bps)
                + self.margin_db)

    def received_power_dbm(self, length_km):
        """Received optical power (dBm) at range ``length_km`` (array or scalar)."""
        d_m = np.asarray(length_km, dtype=np.float64) * 1e3
        theta, w0 = self.divergence_rad, self.waist_m
        dr = self.rx_aperture_mm * 1e-3
        w2 = w0 * w0 + (theta * d_m) ** 2
        captured = -np.expm1(-dr * dr / (2.0 * w2))
        with np.errstate(divide="ignore"):
            return (self.tx_power_dbm - self.pointing_loss_db - self.optics_loss_db
                    + 10.0 * np.log10(captured))

    def rate_bps(self, length_km) -> np.ndarray:
        """Highest rung that closes at each range; 0 where even the lowest does not.

        The received power falls monotonically with range, so rung k closes exactly up to
        its closing range (:meth:`closing_ranges_km`): one comparison per link and rung, no
        logarithms in the per-step path.
        """
        d = np.atleast_1d(np.asarray(length_km, dtype=np.float64))
        reach, ladder = self._lookup
        # The rungs closing at d are the lowest ones (closing ranges fall as the rate rises),
        # so their count indexes the rate; NaN ranges close nothing.
        n_closing = np.zeros(d.shape, dtype=np.uint8 if reach.shape[0] < 255 else np.intp)
        for r_km in reach:
            n_closing += d <= r_km
        return ladder.take(n_closing)

    @cached_property
    def _lookup(self):
        rates = np.asarray(self.rates_bps, dtype=np.float64)
        return self.closing_ranges_km(), np.concatenate([[0.0], rates])

    def closing_ranges_km(self) -> np.ndarray:
        """Longest range at which each rung closes (0 where it closes nowhere).

        Inverts ``P_t eta (1 - exp(-D_r^2 / (2 w^2))) >= threshold`` for ``w``, then
        ``w^2 = w0^2 + (theta d)^2`` for ``d``.
        """
        frac = 10.0 ** ((self.thresholds_dbm - self.tx_power_dbm + self.pointing_loss_db
                         + self.optics_loss_db) / 10.0)
        dr = self.rx_aperture_mm * 1e-3
        out = np.zeros(frac.shape[0])
        ok = frac < 1.0
        w2_max = dr * dr / (-2.0 * np.log1p(-frac[ok]))
        extra = np.maximum(w2_max - self.waist_m ** 2, 0.0)
        out[ok] = np.sqrt(extra) / self.divergence_rad / 1e3
        return out

    def reach_km(self) -> float:
        """Longest range at which the lowest rung closes (links beyond it cannot be UP)."""
        return float(self.closing_ranges_km()[0])


#: Built-in parameter sets (``[links.budget].preset``). Sources and the "assumed" values are
#: listed in docs/links.md (capacity section).
BUDGET_PRESETS = {
    # Starlink-class ISL: 100 Gbps sustained at the 5,400 km range cap, 200 Gbps on shorter
    # links (SpaceX, SPIE Photonics West 2024). Aperture of Tesat SCOT80 (80 mm); transmit
    # power, losses and sensitivity assumed.
    "starlink_100g": LinkBudget(
        tx_power_w=2.0, wavelength_nm=1550.0, tx_aperture_mm=80.0, rx_aperture_mm=80.0,
        divergence_urad=None, pointing_loss_db=1.0, optics_loss_db=2.0,
        sensitivity_dbm=-36.0, sensitivity_ref_bps=100e9, margin_db=3.0,
        rates_bps=(10e9, 25e9, 50e9, 100e9, 200e9)),
    # Suncatcher-class DWDM link: 24 x 400G channels = 9.6 Tbps per aperture (Google, arXiv
    # 2511.19468), commercial transceivers at about 1 mW launch power per channel (assumed)
    # over 100-200 m; ladder in whole channel groups of 400G.
    "suncatcher_dwdm": LinkBudget(
        tx_power_w=0.024, wavelength_nm=1550.0, tx_aperture_mm=100.0, rx_aperture_mm=100.0,
        divergence_urad=None, pointing_loss_db=1.0, optics_loss_db=2.0,
        sensitivity_dbm=-20.0, sensitivity_ref_bps=400e9, margin_db=3.0,
        rates_bps=(400e9, 800e9, 1.6e12, 3.2e12, 4.8e12, 9.6e12)),
}


def capacity_bps(length_km, state, model: str, max_bps: float, reference_range_km: float,
                 budget: LinkBudget | None = None):
    """Per-link rate (bps); 0 for links that are not ``UP``.

    Parameters
    ----------
    length_km, state : numpy.ndarray
        Link lengths and states of one step.
    model : str
        ``fixed``, ``link_budget`` or ``rate_ladder``.
    max_bps, reference_range_km : float
        ``fixed`` / ``link_budget`` parameters.
    budget : LinkBudget, optional
        ``rate_ladder``: the link budget (default: the ``starlink_100g`` preset).

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
    elif model == "rate_ladder":
        if budget is None:
            budget = BUDGET_PRESETS["starlink_100g"]
        rate = budget.rate_bps(length_km).reshape(length_km.shape)
    else:
        raise ValueError(f"unknown capacity model {model!r}")
    return np.where(up, rate, 0.0)
