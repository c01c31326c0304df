"""``GET /``: the page where a person draws a digit, and the two files it loads."""

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from service.inference.errors import NotFound
from service.rest.headers import same_origin_policy, security_headers

router = APIRouter(tags=["page"])

ASSET_TYPES = {
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
}
# The files change only when the service is upgraded; no-cache makes browsers revalidate then.
HEADERS = security_headers(same_origin_policy()) | {"Cache-Control": "no-cache"}


@cache
def _static(name: str) -> bytes:
    """Read a packaged file once: it is fixed for the life of the process."""
    return files("service.rest").joinpath("static", name).read_bytes()


@router.get("/", response_class=HTMLResponse, summary="Draw a digit")
def page() -> HTMLResponse:
    """A self-contained page (no build step, no CDN) that sends drawings to ``POST /predict``."""
    return HTMLResponse(_static("index.html"), headers=HEADERS)


@router.get("/static/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    """The page's stylesheet and script; only those two names are served."""
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFound(f"there is no static file {name!r}; the page uses {', '.join(ASSET_TYPES)}")
    return Response(_static(name), media_type=media_type, headers=HEADERS)
