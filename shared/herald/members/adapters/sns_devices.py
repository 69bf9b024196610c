"""Mobile devices as SNS platform endpoints (FCM and APNs platform applications).

Implements :class:`herald.members.ports.DeviceRegistry`. ``CreatePlatformEndpoint`` is idempotent
for a token registered with the same attributes, so a repeat join finds the same endpoint; an
endpoint SNS disabled (the token expired, then was refreshed by the app) is enabled again.

Publishing to these endpoints is the fan-out's: :mod:`herald.fanout.channels.sns_mobile`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import LazyClient, as_transient, error_code
from herald.members.rules import PushNotConfigured

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class SnsDeviceRegistry:
    def __init__(self, applications: Mapping[str, str | None], sns: SNSClient | None = None) -> None:
        """``applications``: platform (``fcm``, ``apns``) -> platform application ARN (empty: none)."""
        self.applications = {k: v for k, v in applications.items() if v}
        self._sns = sns

    sns: LazyClient[SNSClient] = LazyClient("sns")

    def register(self, platform: str, token: str) -> str:
        application = self.applications.get(platform)
        if not application:
            raise PushNotConfigured(
                ("body", "device", "platform"), f"mobile push for {platform} is not configured"
            )
        try:
            arn = str(
                self.sns.create_platform_endpoint(PlatformApplicationArn=application, Token=token)[
                    "EndpointArn"
                ]
            )
            attributes = self.sns.get_endpoint_attributes(EndpointArn=arn).get("Attributes", {})
            if attributes.get("Enabled", "true").lower() != "true" or attributes.get("Token") != token:
                self.sns.set_endpoint_attributes(
                    EndpointArn=arn, Attributes={"Token": token, "Enabled": "true"}
                )
        except ClientError as exc:
            if error_code(exc) == "InvalidParameter":
                raise PushNotConfigured(
                    ("body", "device", "token"), "the push service refused this device token"
                ) from exc
            raise as_transient(exc, f"registering a {platform} device") from exc
        except BotoCoreError as exc:
            raise as_transient(exc, f"registering a {platform} device") from exc
        return arn
