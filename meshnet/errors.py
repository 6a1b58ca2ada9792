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


def quote_excerpt(text, limit: int = 40) -> str:
    """``text`` from a user's file, quoted for an error message: control and other
    non-printable characters escaped (``\\x1b``, ``\\n``), at most ``limit`` characters kept
    (then ``...``), so a binary or huge line cannot flood or drive the terminal.

    Examples
    --------
    >>> quote_excerpt("ab\\x1b[2Jc")
    "'ab\\\\x1b[2Jc'"
    >>> quote_excerpt("x" * 50, limit=5)
    "'xxxxx...'"
    """
    s = str(text)
    cut = len(s) > limit
    esc = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                  for c in s[:limit])
    return f"'{esc}{'...' if cut else ''}'"
