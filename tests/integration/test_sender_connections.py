"""The Web Push sender a push sender container makes keeps as many connections per push service as
its threads push at once: most members of a community share one push service, and a smaller pool
would open a new TLS connection for most pushes of every window."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from herald.fanout.channels.vapid import generate_vapid_key, private_key_pem
from herald.fanout.channels.web import sender_from_env
from herald.fanout.channels.webpush import PushConnections


@pytest.mark.parametrize("threads", ["8", "50"])
def test_the_sender_pools_a_connection_per_thread_for_each_push_service(aws_env: None, threads: str) -> None:
    with mock_aws():
        boto3.client("ssm").put_parameter(
            Name="/herald/test/vapid-private-key",
            Value=private_key_pem(generate_vapid_key()),
            Type="SecureString",
        )
        sender = sender_from_env(
            {
                "MEMBERS_TABLE": "members",
                "DELIVERIES_TABLE": "deliveries",
                "PUSH_JOB_QUEUE_URL": "https://sqs.local/push",
                "VAPID_KEY_PARAMETER": "/herald/test/vapid-private-key",
                "SENDER_THREADS": threads,
            }
        )
        assert isinstance(sender.transport, PushConnections)
        assert sender.transport.max_per_host == int(threads)
        sender.close()
