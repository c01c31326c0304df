"""What keeps a web page from driving the service through a visitor's browser.

- The routes that change what the service serves (the model repository's) accept a body only
  as ``application/json``, or with no Content-Type at all (as tritonclient sends it): never
  ``text/plain`` or a form, the types a page may send to another origin without a CORS
  preflight. A request that carries an ``Origin`` (browsers add it to such requests; scripts
  and tritonclient do not) is refused unless that origin is in ``MNIST_CORS_ORIGINS``.
- ``MNIST_ALLOWED_HOSTS``: the ``Host`` names the service answers to, against DNS rebinding
  (a page whose own name resolves to this service's address). Starlette's
  ``TrustedHostMiddleware`` does this with a plain-text 400; this one answers with the
  service's JSON error, counted like every refusal, and lets health probes through (a
  Kubernetes probe names the pod's IP address).
"""

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.inference.errors import BadRequest, Forbidden, UnsupportedMediaType
from service.rest.asgi import HttpMiddleware, header, route_path
from service.rest.errors import refusal

JSON_MEDIA_TYPE = "application/json"
# Probes name the pod's address, which no host list knows in advance.
HEALTH_PATHS = ("/v2/health/live", "/v2/health/ready")


async def refuse_cross_site(request: Request) -> None:
    """A dependency of the state-changing routes: 415 for a body type a page could send to
    another origin without a preflight, 403 for a browser request from an origin not allowed."""
    content_type = request.headers.get("content-type")
    media_type = content_type.split(";", 1)[0].strip().lower() if content_type else None
    if media_type is not None and media_type != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"Content-Type {media_type!r} is not accepted here: send application/json, or no "
            "Content-Type",
            "cross_site_content_type",
        )
    origin = request.headers.get("origin")
    if origin is not None and origin not in request.app.state.dataplane.settings.cors_origins:
        raise Forbidden(
            f"requests from the web origin {origin[:100]!r} may not change the model "
            "repository; list it in MNIST_CORS_ORIGINS to allow it",
            "cross_site_origin",
        )


class AllowedHosts(HttpMiddleware):
    """Answer only requests whose ``Host`` is one of ``hosts``: a name, or ``*.domain`` for its
    subdomains (as Starlette's ``TrustedHostMiddleware``); any other gets a JSON 400."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        if not hosts:
            raise ValueError("AllowedHosts needs at least one host")
        super().__init__(app)
        self.hosts = [host.lower() for host in hosts]

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if route_path(scope) in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        host = _host_name(header(scope, b"host") or "")
        if not any(_matches(host, pattern) for pattern in self.hosts):
            shown = host[:100] or "(none)"
            error = BadRequest(
                f"the Host {shown!r} is not one this service answers to (MNIST_ALLOWED_HOSTS)",
                "host_not_allowed",
            )
            await refusal(scope, receive, send, error)
            return
        await self.app(scope, receive, send)


def _host_name(value: str) -> str:
    """The Host header without its port: ``[::1]:8000`` is ``[::1]``, ``a.b:80`` is ``a.b``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _matches(host: str, pattern: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern
