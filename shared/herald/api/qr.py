"""QR codes of join links, as SVG and PNG (segno: no Pillow needed)."""

from __future__ import annotations

import io


def _code(url: str):  # type: ignore[no-untyped-def]
    import segno

    return segno.make(url, error="m", micro=False)


def svg(url: str, scale: int = 8) -> str:
    out = io.BytesIO()
    _code(url).save(out, kind="svg", scale=scale, border=4, xmldecl=True, svgns=True, title=url)
    return out.getvalue().decode("utf-8")


def png(url: str, scale: int = 8) -> bytes:
    out = io.BytesIO()
    _code(url).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def png_data_url(url: str, scale: int = 8) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png(url, scale)).decode("ascii")
