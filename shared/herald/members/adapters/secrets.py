"""Secrets from AWS Secrets Manager, read once per container and kept."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import as_transient, client

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretValue:
    """A callable returning the secret's bytes: fetched with ``GetSecretValue`` on first use, then cached.

    Rotation takes effect in new containers (a secret that changes invalidates member tokens,
    see docs/members.md).
    """

    def __init__(self, secret_id: str, secretsmanager: SecretsManagerClient | None = None) -> None:
        self.secret_id = secret_id
        self._client = secretsmanager
        self._value: bytes | None = None
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._fetch()
        return self._value

    def _fetch(self) -> bytes:
        sm: SecretsManagerClient = self._client or client("secretsmanager")
        try:
            response = sm.get_secret_value(SecretId=self.secret_id)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "reading the member token secret") from exc
        if "SecretString" in response:
            value = str(response["SecretString"]).encode("utf-8")
        else:
            value = bytes(response["SecretBinary"])
        if len(value) < 16:
            raise as_transient(ValueError("the secret is shorter than 16 bytes"), "reading the secret")
        return value
