"""
Static files next to a listener's WebSocket path: :func:`static_directory`, a Crossbar ``resource`` path
service (``router.compile`` mounts one per ``web`` entry of a listener).

It serves the files of one directory and nothing else:

- **no directory listing**: a directory answers its ``index.html``, or 404;
- **never outside the directory**: ``..`` and its encodings are refused by Twisted's path handling, and a
  file reached through a symbolic link is served only if its real path is inside the directory's real path
  (a link out of it answers 404, the same as a missing file);
- **explicit MIME types** for what a web app ships (:data:`MIME_TYPES`; anything else
  ``application/octet-stream``), with ``X-Content-Type-Options: nosniff`` so a browser never guesses;
- **caching**: ``Cache-Control: no-cache`` with ``Last-Modified``: browsers keep files but ask each time
  (a 304 when unchanged), so a changed page is seen at the next load;
- **regular files and directories only**: a FIFO or a device answers 404 (reading one would block the
  router), and so does every name starting with ``.`` (``.env``, ``.git/``);
- GET and HEAD only.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.web import resource
from twisted.web.static import File

__all__ = ["MIME_TYPES", "StaticFiles", "static_directory"]

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
}


class StaticFiles(File):
    """A :class:`twisted.web.static.File` confined to the real path of ``root``."""

    contentTypes = MIME_TYPES
    defaultType = "application/octet-stream"

    def __init__(self, path: str, root: str | None = None, **kwargs: Any) -> None:
        super().__init__(path, defaultType=self.defaultType, **kwargs)
        self.indexNames = ["index.html"]
        self.contentEncodings = {}  # a.html.gz is a file of its own, not a gzip-encoded a.html
        self.root = root if root is not None else os.path.realpath(path)

    def _inside(self) -> bool:
        real = os.path.realpath(self.path)
        return real == self.root or real.startswith(self.root + os.sep)

    def getChild(self, path: bytes, request: Any) -> Any:
        if path.startswith(b"."):  # .env, .git/...: never published by being in the directory
            return resource.NoResource()
        child = super().getChild(path, request)
        if isinstance(child, StaticFiles) and not child._inside():
            return resource.NoResource()
        return child

    def directoryListing(self) -> Any:
        return resource.NoResource()

    def createSimilarFile(self, path: str) -> StaticFiles:
        similar = StaticFiles(path, root=self.root)
        similar.processors = self.processors
        return similar

    def render_GET(self, request: Any) -> Any:
        real = os.path.realpath(self.path)
        if not self._inside() or (os.path.exists(real) and not (os.path.isfile(real) or os.path.isdir(real))):
            return resource.NoResource().render(request)  # outside, or a FIFO/device (reading one would block)
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return super().render_GET(request)

    render_HEAD = render_GET


def static_directory(extra: dict[str, Any]) -> StaticFiles:
    """Crossbar's ``resource`` path service: ``extra`` is ``{"directory": <absolute path>}``."""
    return StaticFiles(extra["directory"])
