"""Security headers of what browsers render: the drawing page, its files and ``/docs``.

Everything comes from this origin (``'self'``): the page and the docs work offline and cannot
load, send or be framed from anywhere else. The API's JSON answers do not need them (no browser
renders them); they go without, so that the hot routes pay nothing.
"""

import base64
import hashlib
import re

# default-src 'none': whatever a directive below does not allow is refused.
SAME_ORIGIN_ONLY = (
    "default-src 'none'; script-src 'self'{scripts}; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", flags=re.DOTALL)


def security_headers(policy: str) -> dict[str, str]:
    """The CSP ``policy`` and the headers every rendered response carries beside it."""
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",  # frame-ancestors 'none' for browsers without CSP 2
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def same_origin_policy(html: bytes = b"") -> str:
    """The same-origin CSP, allowing exactly the inline scripts of ``html`` by their hash
    (Swagger UI starts from one), so that no other inline script can run."""
    hashes = (
        " 'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in INLINE_SCRIPT.findall(html)
    )
    return SAME_ORIGIN_ONLY.format(scripts="".join(hashes))
