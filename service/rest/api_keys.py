"""``MNIST_API_KEYS``: the key check in front of every route but the open ones.

Open: health (so that probes need no secret), the drawing page and its two files (the page
asks the person for the key and sends it), and the API documentation. Everything else, the
inference and management routes and ``/metrics`` among them, needs ``Authorization: Bearer
<key>``, checked by the core's ``ApiKeys``. The guard is only in the stack when keys are set:
with none, requests do not pay for it at all.
"""

import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from service.inference.auth import ApiKeys, Unauthorized
from service.rest.asgi import HttpMiddleware, header, route_path
from service.rest.errors import refusal

OPEN_PATHS = re.compile(
    r"^/(?:$|static/[^/]+$|docs(?:/assets/[^/]+)?$|openapi\.json$|v2/health/(?:live|ready)$"
    r"|v2/models/[^/]+(?:/versions/[^/]+)?/ready$)"
)


class ApiKeyGuard(HttpMiddleware):
    """Answer 401 (with its ``WWW-Authenticate`` challenge) to a guarded request without a key."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        super().__init__(app)
        self.keys = keys

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A CORS preflight never carries credentials: CORSMiddleware, outside, answers it.
        if OPEN_PATHS.match(route_path(scope)):
            await self.app(scope, receive, send)
            return
        try:
            self.keys.check(header(scope, b"authorization"))
        except Unauthorized as error:
            await refusal(scope, receive, send, error)
            return
        await self.app(scope, receive, send)


def document_api_keys(schema: dict[str, Any]) -> None:
    """Mark every guarded operation of an OpenAPI document as needing the Bearer key (with its
    401), so that /docs offers "Authorize" and clients see which routes need it."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["apiKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "One of the keys in MNIST_API_KEYS or MNIST_API_KEYS_FILE.",
    }
    refused = {
        "description": "No API key, or not one of the service's",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for path, operations in schema["paths"].items():
        if OPEN_PATHS.match(path):
            continue
        for operation in operations.values():
            operation["security"] = [{"apiKey": []}]
            operation.setdefault("responses", {})["401"] = refused
