"""``DirectRoute``: a FastAPI route whose endpoint reads the request and writes the response.

The hot routes (``POST /predict``, V2 infer) parse their own bodies (multipart images, JSON
with binary tensor sections) and write their own bytes, so FastAPI's per-request dependency
solving, body parsing and response-model serialisation would only cost time. A ``DirectRoute``
keeps what FastAPI is for: the route is declared once, documented from its endpoint's
signature, matched by the router inside the app's one middleware stack, and its path and query
parameters validated by FastAPI (a refusal reads as on any other route); its handler
(``get_route_handler``, the seam FastAPI documents for custom request handling) then awaits
the endpoint with the ``Request`` and those values.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]


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

    def get_route_handler(self) -> RouteHandler:
        endpoint = self.endpoint
        request_name = self.dependant.request_param_name
        path_fields, query_fields = self.dependant.path_params, self.dependant.query_params

        async def handle(request: Request) -> Response:
            values, errors = request_params_to_args(path_fields, request.path_params)
            if query_fields:
                query_values, query_errors = request_params_to_args(
                    query_fields, request.query_params
                )
                values.update(query_values)
                errors += query_errors
            if errors:
                raise RequestValidationError(errors)
            values[request_name] = request
            return await endpoint(**values)

        return handle
