"""The local API Gateway end to end: HTTP on loopback, through a worker, back to HTTP."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from herald_tools.localcloud import LocalCloud, free_port

from .conftest import API_TEMPLATE, PROJECT_TEMPLATE

pytestmark = pytest.mark.e2e

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    markers = tmp_path_factory.mktemp("together")
    with LocalCloud(API_TEMPLATE, parameters={"MarkerDir": str(markers)}).start(port=0, api_port=0) as c:
        yield c


def request(
    cloud: LocalCloud,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> http.client.HTTPResponse:
    """One request with headers exactly as given (repeats and case kept); the response, read."""
    assert cloud.api_url is not None
    url = urllib.parse.urlsplit(cloud.api_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers or []:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    response.data = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


def body_json(response: http.client.HTTPResponse) -> Any:
    return json.loads(response.data)  # type: ignore[attr-defined]


def test_ready_info_and_outputs(cloud: LocalCloud) -> None:
    info = cloud.ready_info()
    assert info["api_url"] == cloud.api_url
    assert info["api_url"].startswith("http://127.0.0.1:") and info["api_url"] != info["endpoint_url"]
    assert info["outputs"]["ApiUrl"] == cloud.api_url  # the execute-api URL, resolved locally


def test_the_function_gets_api_gateways_event(cloud: LocalCloud) -> None:
    response = request(
        cloud,
        "GET",
        "/items/a%20b?tag=x&tag=y&q=caf%C3%A9",
        headers=[("X-Custom-Header", "one"), ("x-custom-header", "two"), ("X-Custom-Header", "three")],
    )
    assert response.status == 200
    event = body_json(response)
    assert event["resource"] == "/items/{id}" and event["httpMethod"] == "GET"
    assert event["path"] == "/items/a%20b" and event["pathParameters"] == {"id": "a%20b"}
    assert event["queryStringParameters"] == {"tag": "y", "q": "café"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["x", "y"], "q": ["café"]}
    assert event["multiValueHeaders"]["X-Custom-Header"] == ["one", "three"]
    assert event["multiValueHeaders"]["x-custom-header"] == ["two"]
    assert event["headers"]["Host"] == urllib.parse.urlsplit(cloud.api_url or "").netloc
    context = event["requestContext"]
    assert context["stage"] == "test" and context["path"] == "/items/a%20b"  # as requested: at the root
    assert context["apiId"] == cloud.resources.apis["EchoApi"].api_id
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert response.getheader("x-amzn-RequestId") == context["requestId"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]  # multiValueHeaders


def test_the_stage_prefix_is_served_as_on_an_execute_api_url(cloud: LocalCloud) -> None:
    response = request(cloud, "GET", "/test/items/a%20b?tag=x")
    assert response.status == 200
    event = body_json(response)
    assert event["resource"] == "/items/{id}" and event["pathParameters"] == {"id": "a%20b"}
    assert event["path"] == "/items/a%20b"  # without the stage, as API Gateway hands it over
    assert event["requestContext"]["path"] == "/test/items/a%20b"  # with it: as requested
    assert request(cloud, "GET", "/other-stage/items/x").status == 404  # only the API's own stage


def test_greedy_paths_and_methods(cloud: LocalCloud) -> None:
    event = body_json(request(cloud, "PUT", "/files/docs/a/b.txt", body=b"text body"))
    assert event["resource"] == "/files/{proxy+}" and event["pathParameters"] == {"proxy": "docs/a/b.txt"}
    assert event["body"] == "text body" and event["httpMethod"] == "PUT"
    special = body_json(request(cloud, "GET", "/items/special"))
    assert special["resource"] == "/items/special" and special["pathParameters"] is None
    member = body_json(request(cloud, "DELETE", "/items/i1/members/m1"))
    assert member["pathParameters"] == {"id": "i1", "member_id": "m1"}


def test_binary_round_trip(cloud: LocalCloud) -> None:
    headers = [("Content-Type", "image/png"), ("Accept", "image/png")]
    response = request(cloud, "POST", "/image", body=PNG, headers=headers)
    assert response.status == 200 and response.getheader("Content-Type") == "image/png"
    assert response.data == PNG  # type: ignore[attr-defined]
    # As on API Gateway: unless the first Accept type is a binary media type, the base64 text is sent.
    response = request(cloud, "POST", "/image", body=PNG, headers=[("Content-Type", "image/png")])
    assert base64.b64decode(response.data) == PNG  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/nowhere", 404, "Missing Authentication Token"),
        ("POST", "/items/x", 403, "Missing Authentication Token"),
        ("GET", "/fail", 502, "Internal server error"),
        ("GET", "/malformed", 502, "Internal server error"),
    ],
)
def test_errors(cloud: LocalCloud, method: str, path: str, status: int, message: str) -> None:
    response = request(cloud, method, path)
    assert (response.status, body_json(response)) == (status, {"message": message})


def test_payload_limit(cloud: LocalCloud) -> None:
    response = request(cloud, "POST", "/files/big", body=b"x" * (10 * 1024 * 1024 + 1))
    assert (response.status, body_json(response)) == (413, {"message": "Request Too Long"})
    assert request(cloud, "POST", "/files/fits", body=b"x" * (1024 * 1024)).status == 200


def test_cors_preflight(cloud: LocalCloud) -> None:
    response = request(cloud, "OPTIONS", "/items/x", headers=[("Origin", "http://localhost:8080")])
    assert response.status == 200
    assert response.getheader("Access-Control-Allow-Origin") == "*"
    assert response.getheader("Access-Control-Allow-Methods") == "GET,OPTIONS,PATCH"
    assert response.getheader("Access-Control-Allow-Headers") == "Content-Type,Authorization"
    assert response.getheader("Access-Control-Max-Age") == "600"


def test_environment_secrets_and_push(cloud: LocalCloud) -> None:
    env = body_json(request(cloud, "GET", "/env"))
    assert env["ALLOW_LOOPBACK_PUSH"] == "true"
    assert env["PUBLIC_API_URL"] == cloud.api_url
    secret = cloud.client("secretsmanager").get_secret_value(SecretId=env["TOKEN_SECRET_ARN"])
    assert env["secret"] == secret["SecretString"] and len(env["secret"]) == 48
    assert env["FCM_ARN"] == cloud.resources.parameters["FcmPlatformApplicationArn"]
    apps = cloud.client("sns").list_platform_applications()["PlatformApplications"]
    assert env["FCM_ARN"] in {a["PlatformApplicationArn"] for a in apps}


def test_concurrent_requests_run_in_parallel(cloud: LocalCloud) -> None:
    # Each request waits (up to 5 s) until all three are running: only parallel workers get there.
    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda _: request(cloud, "GET", "/together/g1?n=3"), range(3)))
    results = [body_json(r) for r in responses]
    assert [r["seen"] for r in results] == [3, 3, 3]
    assert len({r["pid"] for r in results}) == 3  # three execution environments
    cloud.wait_until_idle(timeout=10)
    assert not cloud.busy()


def test_api_port_and_stop(tmp_path: Path) -> None:
    port = free_port()
    cloud = LocalCloud(API_TEMPLATE, parameters={"MarkerDir": str(tmp_path)})
    with cloud.start(port=0, api_port=port):
        assert cloud.api_url == f"http://127.0.0.1:{port}"
        assert request(cloud, "GET", "/nowhere").status == 404
    assert cloud.api_url is None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises(ConnectionRefusedError):
        conn.request("GET", "/")


def test_herald_api_on_the_project_template() -> None:
    with LocalCloud(PROJECT_TEMPLATE, logs=io.StringIO()).start(port=0, api_port=0) as cloud:
        assert cloud.outputs["ApiUrl"] == cloud.api_url
        response = request(cloud, "GET", "/openapi.json")
        assert response.status == 200
        assert (response.getheader("Content-Type") or "").startswith("application/json")
        assert "openapi" in body_json(response)
        assert request(cloud, "GET", "/communities/unknown").status == 404


def _swagger_servers(page: bytes) -> list[dict[str, str]]:
    """The ``servers`` of the OpenAPI document Swagger UI's page carries inline."""
    match = re.search(rb'"servers":\s*(\[[^\]]*\])', page)
    assert match is not None, "no servers in the Swagger UI page"
    return list(json.loads(match.group(1)))


def test_swagger_ui_tries_requests_where_it_was_served_from() -> None:
    """Swagger UI's "Try it out" prefixes the document's server URL: it must be reachable."""
    with LocalCloud(PROJECT_TEMPLATE, logs=io.StringIO()).start(port=0, api_port=0) as cloud:
        stage = cloud.resources.apis["HeraldApi"].stage
        for prefix in ("", f"/{stage}"):
            docs = request(cloud, "GET", f"{prefix}/docs")
            assert docs.status == 200
            [server] = _swagger_servers(docs.data)  # type: ignore[attr-defined]
            assert server["url"] == (prefix or "/")
            document = request(cloud, "GET", f"{prefix}/openapi.json")
            assert body_json(document)["servers"] == [{"url": prefix or "/"}]
            # What "Try it out" calls, on that server URL: the function answers (its 404, not the gateway's).
            tried = request(cloud, "GET", f"{server['url'].rstrip('/')}/communities/unknown")
            assert tried.status == 404 and "Missing Authentication Token" not in tried.data.decode()  # type: ignore[attr-defined]


def test_herald_local_serves_the_api() -> None:
    root = PROJECT_TEMPLATE.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "herald_tools.cli",
            "local",
            "--port",
            "0",
            "--api-port",
            "0",
            "--site-port",
            "0",
            "--json",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert (
            info["api_url"].startswith("http://127.0.0.1:") and info["outputs"]["ApiUrl"] == info["api_url"]
        )
        url = urllib.parse.urlsplit(info["api_url"])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("GET", "/openapi.json")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
