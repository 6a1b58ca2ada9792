"""Link states and the reason codes that explain why a candidate link is not usable.

Reasons are checked in this order and the first failing one is reported:
``invalid`` (an end has no position, e.g. decayed), ``seam`` (the two orbits counter-rotate),
``earth_blocked`` (the line of sight dips below the grazing altitude; for two satellites above
it this is exactly "farther apart than the geometric range limit"), ``out_of_range`` (beyond the
terminal's range cap), ``polar`` (cross-plane link with an end above the polar cut-off),
``angular_rate`` (the line of sight turns faster than a terminal can track), ``sun`` (the Sun
within the exclusion angle of the line of sight at a terminal that is not in eclipse).
``reassigned`` is not a failure: a ``dynamic`` link released by periodic re-optimisation
(``reoptimise_interval_s``) because its terminals found better partners.
Ground links (elevation rule) have two release reasons of their own: ``below_mask`` (the
satellite set below the station's elevation mask) and ``handover`` (the antenna was handed
over to a satellite higher by more than ``handover_margin_deg``); a ground link whose
satellite has no position is released as ``invalid``.

Fault reasons (``[faults]``, docs/faults.md) take precedence over every geometric reason:
``fault`` (a failed satellite, head or ground station, a plane or region event),
``manoeuvre`` (the satellite's lasers are down while it manoeuvres), ``storm`` (lasers down or
satellite lost in a solar storm).
``power`` (``[power] policy = "shed_lasers"``, docs/power.md): the satellite's laser heads are
switched off to save its battery; it keeps its ground links. A fault reason precedes it.
"""

from __future__ import annotations

#: Link states (int8 in every table).
DOWN = 0
ACQUIRING = 1
UP = 2
STATE_NAMES = ("down", "acquiring", "up")

#: Reason codes (int8 in every table).
NONE = 0
INVALID = 1
SEAM = 2
EARTH_BLOCKED = 3
OUT_OF_RANGE = 4
POLAR = 5
ANGULAR_RATE = 6
SUN = 7
REASSIGNED = 8
BELOW_MASK = 9
HANDOVER = 10
FAULT = 11
MANOEUVRE = 12
STORM = 13
POWER = 14
REASON_NAMES = ("none", "invalid", "seam", "earth_blocked", "out_of_range", "polar",
                "angular_rate", "sun", "reassigned", "below_mask", "handover", "fault",
                "manoeuvre", "storm", "power")
#: Reasons that come from the fault schedule (``[faults]``), not from geometry.
FAULT_REASONS = (FAULT, MANOEUVRE, STORM)

#: Link kinds.
ISL = 0
GSL = 1
KIND_NAMES = ("isl", "gsl")
