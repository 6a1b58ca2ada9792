"""Errors a caller can fix. The CLI prints their message on one line and exits with code 2.

Per-element failures (a decayed satellite, an infeasible link, an unreachable pair) are data,
not exceptions: see the status and reason codes of each module.
"""

from __future__ import annotations


class MeshnetError(Exception):
    """Base class: a mistake in the caller's input, with a message that says what to change."""


class ScenarioError(MeshnetError):
    """A scenario file or table is wrong: the message names the file, the key and the fix."""


class TLEError(MeshnetError):
    """A TLE file is corrupt: the message names the file and the line number."""


class HypatiaFormatError(MeshnetError):
    """A Hypatia satellite-network directory is incomplete or malformed."""


class NodeNameError(MeshnetError):
    """A node name given on the command line or in a scenario matches no node (or several)."""
