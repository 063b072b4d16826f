"""Security headers on every response (docs/security.md): a Content-Security-Policy, no
framing (except the citizens' pages, for the sites named in HOTLINE_EMBED_ORIGINS), nosniff,
the referrer kept in the site, no caching of anything but static files and the public pages
that say otherwise, and HSTS when the site is served over HTTPS.

A plain ASGI middleware: it adds headers to the response's start and leaves the body alone
(except for the API browser at /docs, whose one inline script is hashed into its policy)."""

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.config import Settings

# The pages: scripts from the site's own files only (no inline script, no eval), inline styles
# allowed (style attributes in the templates, ECharts' SVG), images from the site or data: URLs.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}"
)
# Anything that is not a page (JSON, spreadsheets, scripts, styles, images): nothing runs in it.
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's API browser loads Swagger UI from its CDN and starts it with an inline script; the
# policy allows that script by its hash, nothing else inline.
DOCS_POLICY = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net {hashes}; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")
# The citizens' pages, which the district's website may show in an iframe.
EMBEDDABLE = ("/kb", "/assistant")
# Files that are the same for everyone; the browser may keep them (they carry ETag and
# Last-Modified). Every other response is not stored unless its route says how to cache it.
STATIC = "/static/"
HSTS = "max-age=31536000"
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


# The headers this middleware sets (a route that set one of them goes the long way).
_SET_HERE = frozenset(
    {
        b"content-security-policy",
        b"x-frame-options",
        b"x-content-type-options",
        b"referrer-policy",
        b"cache-control",
        b"strict-transport-security",
    }
)


def _is_html(name: bytes, value: bytes) -> bool:
    return name == b"content-type" and value.lower().startswith(b"text/html")


class _RawHeaders:
    """Collects what headers_for sets, as raw header pairs."""

    def __init__(self, pairs: list[tuple[bytes, bytes]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        return default

    def __contains__(self, name: str) -> bool:
        return False

    def __setitem__(self, name: str, value: str) -> None:
        self.pairs.append((name.lower().encode("latin-1"), value.encode("latin-1")))


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def script_hashes(html: bytes) -> str:
    """The CSP sources ('sha256-…') of the inline scripts of a page."""
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'" for body in INLINE_SCRIPT.findall(html)
    )


class SecurityHeaders:
    """Adds the security headers to every HTTP response; a header a route set itself
    (Cache-Control) is kept."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        origins = settings.embed_origins
        self.embed_ancestors = origins or "'none'"
        self.hsts = settings.public_url.lower().startswith("https://")
        # What an answer that is no page gets, when it set none of these itself (the API's
        # JSON, most of all): the same headers as headers_for gives it, as raw pairs, appended
        # without a search of the list for each.
        plain: list[tuple[bytes, bytes]] = []
        self.headers_for("/", _RawHeaders(plain))
        self.plain_headers = plain

    def headers_for(self, path: str, headers: MutableHeaders | _RawHeaders, script_sources: str = "") -> None:
        embeddable = _under(path, EMBEDDABLE)
        html = headers.get("content-type", "").startswith("text/html")
        if html and path in DOCS_PATHS:
            policy = DOCS_POLICY.format(hashes=script_sources or "'none'")
        elif html:
            policy = PAGE_POLICY.format(ancestors=self.embed_ancestors if embeddable else "'none'")
        else:
            policy = OTHER_POLICY
        headers["Content-Security-Policy"] = policy
        # X-Frame-Options knows no list of sites: on the embeddable pages it is left out when
        # sites are named (frame-ancestors says which), DENY otherwise, for older browsers.
        if not (embeddable and self.embed_ancestors != "'none'"):
            headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        if "cache-control" not in headers and not path.startswith(STATIC):
            headers["Cache-Control"] = "no-store"
        if self.hsts:
            headers["Strict-Transport-Security"] = HSTS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in DOCS_PATHS:
            await self._docs(path, scope, receive, send)
            return

        plain = not path.startswith(STATIC) and not _under(path, EMBEDDABLE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                if plain and not any(name in _SET_HERE or _is_html(name, value) for name, value in raw):
                    message["headers"] = raw + self.plain_headers
                else:
                    self.headers_for(path, MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """The API browser's page, held until its end (a few hundred bytes) to hash its script."""
        start: Message | None = None
        body: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body" and start is not None:
                body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                whole = b"".join(body)
                self.headers_for(path, MutableHeaders(scope=start), script_hashes(whole))
                await send(start)
                await send({"type": "http.response.body", "body": whole, "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, hold)
