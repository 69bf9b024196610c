"""The local cloud's status endpoint: :meth:`LocalCloud.busy` from outside its process."""

import json
import urllib.request
import uuid

import pytest

from herald_tools.localcloud import LocalCloud

from .conftest import RECORDER_TEMPLATE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    markers = tmp_path_factory.mktemp("markers")
    cloud = LocalCloud(RECORDER_TEMPLATE, parameters={"MarkerDir": str(markers)}, retry_visibility_timeout=0)
    with cloud.start(port=0) as c:
        yield c


def status(cloud: LocalCloud) -> list[str]:
    assert cloud.status_url is not None
    with urllib.request.urlopen(cloud.status_url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())["busy"]


def test_the_ready_info_names_the_status_url(cloud):
    info = cloud.ready_info()
    assert info["status_url"] == cloud.status_url
    assert info["status_url"].startswith("http://127.0.0.1:")
    assert info["status_url"] not in (info["endpoint_url"], info["api_url"])


def test_the_status_reports_what_is_busy_then_nothing(cloud):
    cloud.wait_until_idle(timeout=20)
    assert status(cloud) == []
    # The function sleeps 1.5 s on this message: queued, in flight or running until then.
    cloud.client("sqs").send_message(
        QueueUrl=cloud.outputs["WorkQueueUrl"], MessageBody=f"sleep:1.5-{uuid.uuid4().hex[:8]}"
    )
    reasons = status(cloud)
    assert reasons and any("WorkQueue" in r or "invocation" in r or "batch" in r for r in reasons)
    cloud.wait_until_idle(timeout=20)
    assert status(cloud) == []


def test_stopping_closes_the_status_endpoint(tmp_path):
    cloud = LocalCloud(RECORDER_TEMPLATE, parameters={"MarkerDir": str(tmp_path)})
    with cloud.start(port=0):
        url = cloud.status_url
        assert url is not None
    assert cloud.status_url is None
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)


def test_the_benchs_settled_wait_follows_the_status(cloud):
    from herald_tools.bench.local_cloud import wait_until_idle

    cloud.wait_until_idle(timeout=20)
    queue = cloud.outputs["WorkQueueUrl"]
    cloud.client("sqs").send_message(QueueUrl=queue, MessageBody=f"sleep:1.5-{uuid.uuid4().hex[:8]}")
    seconds = wait_until_idle(cloud.status_url, timeout=30, quiet_s=0.5)
    assert seconds >= 1.0  # busy while the function sleeps 1.5 s on the message
    assert status(cloud) == []


def test_the_benchs_settled_wait_times_out_naming_what_is_busy(cloud):
    from herald_tools.bench.local_cloud import wait_until_idle

    cloud.wait_until_idle(timeout=20)
    queue = cloud.outputs["WorkQueueUrl"]
    cloud.client("sqs").send_message(QueueUrl=queue, MessageBody=f"sleep:3-{uuid.uuid4().hex[:8]}")
    with pytest.raises(TimeoutError, match=r"WorkQueue|invocation|batch"):
        wait_until_idle(cloud.status_url, timeout=1.0, quiet_s=0.5)
    cloud.wait_until_idle(timeout=20)
