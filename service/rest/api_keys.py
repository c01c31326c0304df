"""``MNIST_API_KEYS``: the key check in front of every route but the open ones.

Open: health (so that probes need no secret), the drawing page and its two files (the page
asks the person for the key and sends it), and the API documentation. Everything else, the
inference and management routes and ``/metrics`` among them, needs ``Authorization: Bearer
<key>``, checked by the core's ``ApiKeys``. The guard is only in the stack when keys are set:
with none, requests do not pay for it at all.
"""

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from service.inference.auth import ApiKeys, Unauthorized
from service.rest.errors import count_rejection, error_body, header_pairs
from service.rest.raw import header, route_path, send_body

OPEN_PATHS = re.compile(
    r"^/(?:$|static/[^/]+$|docs(?:/assets/[^/]+)?$|openapi\.json$|v2/health/(?:live|ready)$"
    r"|v2/models/[^/]+(?:/versions/[^/]+)?/ready$)"
)


class ApiKeyGuard:
    """Answer 401 (with its ``WWW-Authenticate`` challenge) to a guarded request without a key."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A CORS preflight never carries credentials: CORSMiddleware, outside, answers it.
        if scope["type"] != "http" or OPEN_PATHS.match(route_path(scope)):
            await self.app(scope, receive, send)
            return
        try:
            self.keys.check(header(scope, b"authorization"))
        except Unauthorized as error:
            count_rejection(scope["app"], error.reason)
            await send_body(send, 401, error_body(error.message), headers=header_pairs(error))
            return
        await self.app(scope, receive, send)
