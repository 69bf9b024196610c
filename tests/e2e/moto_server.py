"""A moto server for the CLI's commands against "AWS": ``--stack NAME`` with ``AWS_ENDPOINT_URL``.

The server runs in a process of its own (moto keeps its state per process), bound to a port the
system picks: this file, run as a script, is that process. The CLI runs in-process with
``AWS_ENDPOINT_URL`` pointing at it, as boto3 and the AWS CLI read it.

moto's CloudFormation has no ``AWS::SecretsManager::Secret``; the server adds it
(:class:`StackSecret`): a Secrets Manager secret made with the stack and listed among its resources
by its ARN, as CloudFormation lists one.

Test modules take the fixtures by importing them (``endpoint_fixture``, ``aws_fixture``), and run
the CLI with :func:`run`.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

REGION = "eu-west-1"


def serve() -> None:
    """The server: its port on the first line of stdout, then requests until it is terminated."""
    from moto.cloudformation.parsing import get_model_map
    from moto.core.common_models import CloudFormationModel
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    class StackSecret(CloudFormationModel):
        """``AWS::SecretsManager::Secret``: a secret with a random value, its ARN the physical id."""

        # moto files each model under the service its module names (moto.<service>....).
        __module__ = "moto.secretsmanager.stack_secret"

        def __init__(self, arn: str) -> None:
            self.arn = arn

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SecretsManager::Secret"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> StackSecret:
            created = secretsmanager_backends[account_id][region_name].create_secret(
                name=resource_name,
                secret_string=secrets.token_hex(32),
                secret_binary=None,
                description=cloudformation_json.get("Properties", {}).get("Description"),
                tags=None,
                kms_key_id=None,
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
            return cls(json.loads(created)["ARN"])

    # The model map is built once, from CloudFormationModel's subclasses: the new one is in it.
    assert get_model_map()["AWS::SecretsManager::Secret"] is StackSecret
    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True)
    print(server.port, flush=True)
    server.serve_forever()


def moto_api(endpoint: str, path: str, body: dict[str, Any]) -> None:
    """POST ``body`` to the server's own API (``/moto-api/...``): its settings and queued answers."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201), (path, response.status)


@pytest.fixture(name="endpoint", scope="module")
def endpoint_fixture() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, __file__], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(name="aws")
def aws_fixture(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    """A session on the moto server, and this process's AWS settings pointing at it only."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    return boto3.Session(region_name=REGION)


def run(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    """``herald ARGS`` in this process, ``stdin`` its standard input: its exit status, stdout, stderr."""
    from herald_tools.cli import main

    capsys.readouterr()
    previous = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(args))
    finally:
        sys.stdin = previous
    out, err = capsys.readouterr()
    return code, out, err


if __name__ == "__main__":
    serve()
