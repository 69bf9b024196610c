"""The public site on loopback: the site bucket's objects over HTTP, as CloudFront serves them.

CloudFront is not emulated; this small static server plays its part for the local cloud. Each
request reads the object from moto's S3 through boto3 and answers with the object's stored
``Content-Type``, ``Cache-Control`` and ``ETag`` (``If-None-Match`` gives 304), plus the security
headers of the distribution's response headers policy (HSTS aside: this is plain http). As the
distribution's viewer-request function does, ``/x/`` serves ``x/index.html`` and ``/x`` (no
extension) redirects to ``/x/``, so the pages' relative links resolve. ``/`` lists the communities.

```python
host = SiteHost("127.0.0.1", 0)          # bound at once: host.url is known before provisioning
host.configure(bucket, s3_client)
host.start(); ...; host.stop()
```
"""

from __future__ import annotations

import html
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

SITE_BUCKET = "SiteBucket"  # the template's logical id of the site bucket
DEFAULT_SITE_PORT = 8080
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
}


def template_has_site(template: Any) -> bool:
    """Whether the template declares the site bucket (then the local cloud serves it)."""
    return SITE_BUCKET in template.resources


def object_key(path: str) -> tuple[str | None, str | None]:
    """``(key, None)`` for the object a URL path serves, ``(None, location)`` for a redirect,
    ``(None, None)`` for the listing of ``/``."""
    raw = urlsplit(path).path
    if raw in ("", "/"):
        return None, None
    key = unquote(raw).lstrip("/")
    if key.endswith("/"):
        return key + "index.html", None
    if "." not in key.rsplit("/", 1)[-1]:
        return None, raw + "/"
    return key, None


class SiteHost:
    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_SITE_PORT) -> None:
        self.bucket: str | None = None
        self.s3: Any = None
        host_ref = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "HeraldLocalSite"
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                host_ref._serve(self, body=True)

            def do_HEAD(self) -> None:
                host_ref._serve(self, body=False)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("site: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def configure(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self.s3 = s3

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever, name="site-host", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()

    # -- requests --------------------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        if self.bucket is None:
            return self._send(request, 503, b"the site is not configured yet\n", "text/plain", body=body)
        key, location = object_key(request.path)
        if location is not None:
            headers = {"Location": location, "Cache-Control": "public, max-age=3600"}
            return self._send(request, 301, b"", "text/plain", headers, body=body)
        if key is None:
            return self._send(request, 200, self._listing(), "text/html; charset=utf-8", body=body)
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = 404 if code in ("NoSuchKey", "404", "NotFound") else 502
            return self._send(request, status, f"{code}: {key}\n".encode(), "text/plain", body=body)
        etag = obj.get("ETag", "")
        headers = {"ETag": etag, "Cache-Control": obj.get("CacheControl") or "no-cache"}
        if obj.get("LastModified") is not None:
            headers["Last-Modified"] = obj["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")
        content = obj["Body"].read()
        if etag and request.headers.get("If-None-Match") == etag:
            return self._send(request, 304, b"", None, headers, body=False)
        ctype = obj.get("ContentType") or "application/octet-stream"
        return self._send(request, 200, content, ctype, headers, body=body)

    def _listing(self) -> bytes:
        assert self.s3 is not None
        response = self.s3.list_objects_v2(Bucket=self.bucket, Delimiter="/")
        names = [p["Prefix"] for p in response.get("CommonPrefixes", [])]
        items = "".join(
            f'<li><a href="/{quote(n)}">{html.escape(n.rstrip("/"))}</a></li>' for n in sorted(names)
        )
        page = (
            '<!doctype html><html lang="en"><meta charset="utf-8"><title>Herald: local site</title>'
            f"<h1>Communities</h1><ul>{items or '<li>none published yet</li>'}</ul></html>"
        )
        return page.encode()

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        content: bytes,
        ctype: str | None,
        headers: dict[str, str] | None = None,
        *,
        body: bool,
    ) -> None:
        request.send_response(status)
        if ctype is not None:
            request.send_header("Content-Type", ctype)
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(content)) if status != 304 else "0")
        request.end_headers()
        if body and status != 304:
            request.wfile.write(content)
