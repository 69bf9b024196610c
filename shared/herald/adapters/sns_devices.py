"""Mobile devices as SNS platform endpoints (FCM and APNs platform applications).

Implements :class:`herald.domain.ports.DeviceRegistry`. ``CreatePlatformEndpoint`` is idempotent
for a token registered with the same attributes, so a repeat join finds the same endpoint; an
endpoint SNS disabled (the token expired, then was refreshed by the app) is enabled again.

:class:`SnsMobilePusher` publishes with a client of its own whose time is bounded
(:data:`PUBLISH_BOUND_S`), so the push sender can count on how long one mobile push may take.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.adapters.aws import LazyClient, as_transient, error_code
from herald.domain.members import PushNotConfigured


class SnsDeviceRegistry:
    def __init__(self, applications: Mapping[str, str | None], sns: Any | None = None) -> None:
        """``applications``: platform (``fcm``, ``apns``) -> platform application ARN (empty: none)."""
        self.applications = {k: v for k, v in applications.items() if v}
        self._sns = sns

    sns: Any = LazyClient("sns")  # type: ignore[assignment]

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


#: Publish's client: connect 2 s, read 5 s, two attempts (standard retries, the first back-off under
#: 1 s). A Publish to a platform endpoint answers in milliseconds; one that does not is a ``retry``.
PUBLISH_CONNECT_S = 2.0
PUBLISH_READ_S = 5.0
PUBLISH_ATTEMPTS = 2
#: The longest one mobile push may take: every attempt's connect and read, and the back-off between.
PUBLISH_BOUND_S = PUBLISH_ATTEMPTS * (PUBLISH_CONNECT_S + PUBLISH_READ_S) + 1.0


@cache
def publish_client() -> Any:
    """The SNS client of mobile pushes (made on first use, once per container)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": PUBLISH_ATTEMPTS},
        connect_timeout=PUBLISH_CONNECT_S,
        read_timeout=PUBLISH_READ_S,
    )
    return boto3.client("sns", config=config)  # type: ignore[call-overload]


class SnsMobilePusher:
    """Mobile pushes through SNS platform endpoints; every answer becomes a ``DeliveryResult``.

    Implements :class:`herald.domain.fanout_service.MobilePusher`. Each message carries the post's
    collapse id (:mod:`herald.push.mobile`): a repeat replaces the notification shown.
    """

    def __init__(self, sns: Any | None = None) -> None:
        self._sns = sns

    @property
    def sns(self) -> Any:
        if self._sns is None:
            self._sns = publish_client()
        return self._sns

    def publish(self, endpoint_arn: str, platform: str, post: Any) -> Any:
        from herald.domain.delivery import DeliveryResult, Outcome, network_failure, sns_result
        from herald.push.mobile import mobile_attributes, mobile_message

        message = mobile_message(
            title=post.title or post.community,
            body=post.excerpt,
            url=post.url,
            post_id=post.post_id,
            community=post.community,
        )
        try:
            self.sns.publish(
                TargetArn=endpoint_arn,
                Message=message,
                MessageStructure="json",
                MessageAttributes=mobile_attributes(platform, post.post_id),
            )
        except ClientError as exc:
            response = getattr(exc, "response", None) or {}
            return sns_result(error_code(exc), str(response.get("Error", {}).get("Message", "")))
        except BotoCoreError as exc:
            return network_failure(f"{type(exc).__name__}: {exc}"[:300])
        return DeliveryResult(Outcome.SENT, status=200)
