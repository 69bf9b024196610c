"""Mobile pushes through SNS platform endpoints (FCM and APNs platform applications).

:class:`SnsMobilePusher` publishes with a client of its own whose time is bounded
(:data:`PUBLISH_BOUND_S`), so the push sender can count on how long one mobile push may take.
The endpoints are registered by the members' :mod:`herald.members.adapters.sns_devices`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import error_code
from herald.core.runtime import Lazy
from herald.fanout.channels.mobile import MobileChannel, mobile_attributes, mobile_message
from herald.fanout.delivery import DeliveryResult, Outcome, network_failure, sns_result

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

#: Publish's client: connect 2 s, read 5 s, two attempts (standard retries, the first back-off under
#: 1 s). A Publish to a platform endpoint answers in milliseconds; one that does not is a ``retry``.
PUBLISH_CONNECT_S = 2.0
PUBLISH_READ_S = 5.0
PUBLISH_ATTEMPTS = 2
#: The longest one mobile push may take: every attempt's connect and read, and the back-off between.
PUBLISH_BOUND_S = PUBLISH_ATTEMPTS * (PUBLISH_CONNECT_S + PUBLISH_READ_S) + 1.0


@cache
def publish_client() -> SNSClient:
    """The SNS client of mobile pushes (made on first use, once per container)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": PUBLISH_ATTEMPTS},
        connect_timeout=PUBLISH_CONNECT_S,
        read_timeout=PUBLISH_READ_S,
    )
    return boto3.client("sns", config=config)


class SnsMobilePusher:
    """Mobile pushes through SNS platform endpoints; every answer becomes a ``DeliveryResult``.

    Implements :class:`herald.fanout.channels.mobile.MobilePusher`. Each message carries the post's
    collapse id (:mod:`herald.fanout.channels.mobile`): a repeat replaces the notification shown.
    """

    def __init__(self, sns: SNSClient | None = None) -> None:
        self._sns = sns

    @property
    def sns(self) -> SNSClient:
        if self._sns is None:
            self._sns = publish_client()
        return self._sns

    def publish(self, endpoint_arn: str, platform: str, post: Any) -> Any:
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
                # mobile_attributes gives SNS's shape (DataType, StringValue) in plain dicts.
                MessageAttributes=cast(
                    "dict[str, MessageAttributeValueTypeDef]", mobile_attributes(platform, post.post_id)
                ),
            )
        except ClientError as exc:
            response = getattr(exc, "response", None) or {}
            return sns_result(error_code(exc), str(response.get("Error", {}).get("Message", "")))
        except BotoCoreError as exc:
            return network_failure(f"{type(exc).__name__}: {exc}"[:300])
        return DeliveryResult(Outcome.SENT, status=200)


def channel(environ: Mapping[str, str]) -> MobileChannel:
    """The registry's factory of the mobile channel: its publisher (a client of its own, bounded by
    :data:`PUBLISH_BOUND_S`) is made on the first push. Nothing is read from ``environ``."""
    return MobileChannel(Lazy(SnsMobilePusher), bound_s=PUBLISH_BOUND_S)
