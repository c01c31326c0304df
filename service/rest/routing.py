"""``DirectRoute``: a FastAPI route whose endpoint reads the request and writes the response.

The hot routes (``POST /predict``, V2 infer) parse their own bodies (multipart images, JSON
with binary tensor sections) and write their own bytes, so FastAPI's per-request dependency
solving, body parsing and response-model serialisation would only cost time. A ``DirectRoute``
keeps what FastAPI is for: the route is declared once, documented from its endpoint's
signature, matched by the router inside the app's one middleware stack, and its path and query
parameters validated by FastAPI (a refusal reads as on any other route; the result is kept for
the ``VALIDATIONS_KEPT`` latest distinct parameters); its handler (``get_route_handler``, the
seam FastAPI documents for custom request handling) then awaits the endpoint with the
``Request`` and those values.
"""

from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]
# Distinct (path parameters, query string) pairs whose validation a route keeps: a client
# repeats the same few, and each costs FastAPI more than the rest of the route's own work.
VALIDATIONS_KEPT = 256


class DirectRoute(APIRoute):
    """An operation whose endpoint takes the ``Request`` and plain path and query parameters,
    and returns the ``Response`` it built (the declared response model documents it)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        dependant = self.dependant
        unsupported = (
            dependant.dependencies
            or dependant.body_params
            or dependant.header_params
            or dependant.cookie_params
        )
        if unsupported or dependant.request_param_name is None:
            raise ValueError(
                f"{path}: a direct route's endpoint takes the Request and path or query "
                "parameters only"
            )
        if options.get("max_body_size") is None:
            # FastAPI's own wrapper adds two exit stacks a request for dependencies with
            # ``yield``, which a direct route refuses, and Starlette's renders exceptions with
            # the same handlers as the app's ``ExceptionMiddleware``, a few frames outside:
            # this route's requests go to its handler directly.
            self.app = direct_app(self.get_route_handler())

    def get_route_handler(self) -> RouteHandler:
        endpoint = self.endpoint
        request_name = self.dependant.request_param_name
        validate = lru_cache(maxsize=VALIDATIONS_KEPT)(self._validate)

        async def handle(request: Request) -> Response:
            scope = request.scope
            path_parameters = scope.get("path_params")
            values, errors = validate(
                tuple(path_parameters.items()) if path_parameters else (),
                scope["query_string"],
            )
            if errors:
                raise RequestValidationError(errors)
            return await endpoint(**values, **{request_name: request})

        return handle

    def _validate(
        self, path_parameters: tuple[tuple[str, str], ...], query_string: bytes
    ) -> tuple[dict[str, Any], list[Any]]:
        """FastAPI's validation of the path and query parameters: their values, or its errors."""
        values, errors = request_params_to_args(self.dependant.path_params, dict(path_parameters))
        query_fields = self.dependant.query_params
        if query_fields:
            query_values, query_errors = request_params_to_args(
                query_fields, QueryParams(query_string)
            )
            values.update(query_values)
            errors += query_errors
        return values, errors


def direct_app(handler: RouteHandler) -> ASGIApp:
    """The ASGI app of a route: ``handler``'s response to each request. Unlike Starlette's
    ``request_response`` it leaves exceptions to the app's ``ExceptionMiddleware``, which
    renders them with the same handlers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return app
