"""The ``[allocation]`` scenario table."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option


def _method_names() -> list[str]:
    from .registry import ALLOCATION_METHODS

    return ALLOCATION_METHODS.choices()


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
                             "filling) or 'proportional' (weighted proportional fair); or "
                             "your own: package.module:name, path/to/file.py:name or an "
                             "entry point (docs/routing_research.md)")

    def validate(self, name: str, where: str) -> None:
        from ..routing.plugins import check_plugin
        from .registry import ALLOCATION_METHODS

        check_plugin(ALLOCATION_METHODS, self, "method", name, where)
