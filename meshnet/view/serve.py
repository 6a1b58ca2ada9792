"""``meshnet view --serve``: serve the page on 127.0.0.1 only (the file works without it)."""

from __future__ import annotations

import functools
import http.server
import webbrowser
from pathlib import Path

from ..errors import MeshnetError


def make_server(page: Path, port: int = 8000):
    """An HTTP server for ``page``'s folder on 127.0.0.1, and the page's URL.

    Examples
    --------
    >>> httpd, url = make_server("runs/x/view.html", 0)       # doctest: +SKIP
    >>> url                                                  # doctest: +SKIP
    'http://127.0.0.1:40123/view.html'
    """
    page = Path(page).resolve()
    handler = functools.partial(_QuietHandler, directory=str(page.parent))
    try:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise MeshnetError(f"--port {port}: cannot listen on 127.0.0.1 ({exc.strerror}); "
                           "give another port, or 0 for any free one") from None
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/{page.name}"


def serve(page: Path, port: int = 8000, open_browser: bool = True) -> None:
    """Serve ``page`` until interrupted (Ctrl-C), opening it in the default browser."""
    httpd, url = make_server(page, port)
    print(f"serving {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass
