"""``GET /``: the page where a person draws a digit."""

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse, summary="Draw a digit")
def page() -> HTMLResponse:
    """A self-contained page: no build step, no CDN."""
    return HTMLResponse(files("service").joinpath("static/index.html").read_text(encoding="utf-8"))
