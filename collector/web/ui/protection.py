"""What keeps a browser's neighbours off the page: headers that forbid framing it, guessing
its content types, caching it and telling other sites where it was; and forms that take a post
only from the page's own origin.

A browser's ``Sec-Fetch-Site`` must say ``same-origin``; without it, the host and port of its
Origin (or Referer) must be the Host it asked, which holds behind a proxy that ends TLS. A post
with none of the three comes from no browser (a script holding a token): it is let through, as
it carries no one's cookie but its own.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EVERY_RESPONSE = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    # Tells other sites nothing, and keeps a real Origin on the page's own posts.
    "Referrer-Policy": "same-origin",
}
STATIC = "/ui/static/"  # the stylesheet: the same for everyone, may be cached
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class PageHeaders:
    """ASGI middleware: the headers above on every response, and ``Cache-Control: no-store``
    on all but the static files (pages and answers show audit data, for one token)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cached = scope.get("path", "").startswith(STATIC)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in EVERY_RESPONSE.items():
                    headers[name] = value
                if not cached:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def same_origin(request: Request) -> None:
    """Refuse (403) a form posted from another origin: a forged sign-in, silence or sign-out.

    A browser says where a request comes from in ``Sec-Fetch-Site``, which no page can set, so
    that header is asked first; a browser without it is judged by its Origin, or without one
    by its Referer, against the Host it asked."""
    if request.method in SAFE_METHODS:
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site != "same-origin":
            raise _refused()
        return
    source = request.headers.get("origin", request.headers.get("referer"))
    if source is None:
        return
    host = request.headers.get("host", "").lower()
    if not host or urlsplit(source).netloc.lower() != host:
        raise _refused()


def _refused() -> HTTPException:
    return HTTPException(status_code=403, detail="a form of this page is taken only from this page")
