"""The ``[allocation]`` scenario table."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option


def _method_names() -> list[str]:
    from .registry import ALLOCATION_METHODS

    return ALLOCATION_METHODS.names()


@dataclass(frozen=True)
class AllocationConfig:
    """How flows share link capacity.

    Examples
    --------
    >>> from meshnet.config import parse_table
    >>> parse_table(AllocationConfig, {"method": "proportional"}, "allocation", "demo.toml")
    AllocationConfig(method='proportional')
    """

    method: str = option("maxmin", choices=_method_names,
                         doc="bandwidth sharing: 'maxmin' (weighted max-min fair, progressive "
                             "filling) or 'proportional' (weighted proportional fair)")
