"""Data for learned routing: per-step graphs as arrays (:mod:`meshnet.learn.graphs`)."""

from __future__ import annotations

from .graphs import SCHEMA, load_step, write_graphs

__all__ = ["SCHEMA", "load_step", "write_graphs"]
