"""QR codes of join links, as SVG and PNG (segno: no Pillow needed): the API's and the site's.

One code for a link everywhere: error correction level M, never a Micro QR, a 4-module quiet
zone, 8 pixels a module.
"""

from __future__ import annotations

import io
from typing import Any

__all__ = ["png", "png_data_url", "svg"]

SCALE = 8
BORDER = 4


def _code(url: str) -> Any:
    import segno

    return segno.make(url, error="m", micro=False)


def svg(url: str, scale: int = SCALE, *, title: str | None = None, classes: bool = True) -> str:
    """The code as an SVG document; ``title`` its ``<title>``; ``classes=False`` leaves out segno's
    CSS class names (a file served on its own, styled by nothing)."""
    out = io.BytesIO()
    options: dict[str, Any] = {"xmldecl": True, "svgns": True}
    if title is not None:
        options["title"] = title
    if not classes:
        options.update(svgclass=None, lineclass=None)
    _code(url).save(out, kind="svg", scale=scale, border=BORDER, **options)
    return out.getvalue().decode("utf-8")


def png(url: str, scale: int = SCALE) -> bytes:
    out = io.BytesIO()
    _code(url).save(out, kind="png", scale=scale, border=BORDER)
    return out.getvalue()


def png_data_url(url: str, scale: int = SCALE) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png(url, scale)).decode("ascii")
