"""``GET /docs``: Swagger UI from files installed with the service, so it works offline.

FastAPI's default page loads Swagger UI from a CDN, which machines without internet (and
browsers behind strict proxies) cannot reach; fastapi-offline packages the same files.
"""

from functools import cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from service.inference.errors import NotFound
from service.rest.headers import same_origin_policy, security_headers

router = APIRouter(include_in_schema=False)
ASSET_HEADERS = security_headers(same_origin_policy())

ASSETS_PACKAGE = "fastapi_offline"
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}


@cache
def _asset(name: str) -> bytes:
    """Read a packaged file once: it is fixed for the life of the process."""
    return files(ASSETS_PACKAGE).joinpath("static", name).read_bytes()


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """Every route with its request and response models, rendered from ``/openapi.json``."""
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon.png",
        # No badge fetched from validator.swagger.io: the page stays on this origin.
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers.update(security_headers(same_origin_policy(page.body)))
    return page


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    """Swagger UI's script, stylesheet and icon; nothing else is served from here."""
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"there is no documentation file {name!r}")
    headers = ASSET_HEADERS | {"Cache-Control": "max-age=86400"}
    return Response(_asset(name), media_type=media_type, headers=headers)
