"""The VAPID private key from SSM Parameter Store (SecureString) or Secrets Manager, once per container."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives.asymmetric import ec

from herald.core.aws import as_transient, client
from herald.fanout.channels.vapid import VapidError, load_vapid_key

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

#: JSON keys a Secrets Manager secret may keep the private key under (a secret is often a JSON object).
_JSON_KEYS = ("private_key", "privateKey", "vapid_private_key")


def _unwrap(value: str) -> str:
    text = value.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise VapidError("the VAPID secret is not valid JSON") from exc
        for name in _JSON_KEYS:
            if isinstance(document, dict) and isinstance(document.get(name), str):
                return str(document[name])
        raise VapidError(f"the VAPID secret's JSON has none of {', '.join(_JSON_KEYS)}")
    return text


class VapidKeySource:
    """A callable returning the VAPID private key, fetched on first use and then kept for the container.

    ``name`` is a Secrets Manager ARN (``arn:aws:secretsmanager:…``) or an SSM parameter name or ARN
    (read with decryption). The stored text is what
    :func:`herald.fanout.channels.vapid.load_vapid_key` accepts, or a JSON object holding it under
    ``private_key``. A key that is rotated takes effect in new containers; browsers subscribed with
    the old public key must subscribe again (docs/push.md).
    """

    def __init__(
        self, name: str, *, ssm: SSMClient | None = None, secretsmanager: SecretsManagerClient | None = None
    ) -> None:
        if not name:
            raise ValueError("the VAPID key's parameter or secret name is empty")
        self.name = name
        self._ssm = ssm
        self._secretsmanager = secretsmanager
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._lock = threading.Lock()

    @property
    def from_secrets_manager(self) -> bool:
        return self.name.startswith("arn:") and ":secretsmanager:" in self.name

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = load_vapid_key(_unwrap(self._fetch()))
        return self._key

    def _fetch(self) -> str:
        try:
            if self.from_secrets_manager:
                sm: SecretsManagerClient = self._secretsmanager or client("secretsmanager")
                secret = sm.get_secret_value(SecretId=self.name)
                if "SecretString" in secret:
                    return str(secret["SecretString"])
                return bytes(secret["SecretBinary"]).decode("utf-8")
            ssm: SSMClient = self._ssm or client("ssm")
            parameter = ssm.get_parameter(Name=self.name, WithDecryption=True)
            return str(parameter["Parameter"]["Value"])
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "reading the VAPID key") from exc
