"""``herald republish`` on the local cloud: after the site's URL changed (a deploy with a new
``PublicSiteUrl`` gives the publisher a new ``PUBLIC_SITE_URL``), the community's pages, feeds and
QR code name the new URL once it is republished; the publisher function renders them, through its
``republish`` event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from herald_tools.cli import _publish_outputs, main
from herald_tools.localcloud.cloud import LocalCloud
from herald_tools.localcloud.invoke import FUNCTIONS_PARAMETER_PREFIX

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "republish-harbour"
NEW_SITE = "https://news.example.org"
PUBLISHER_PARAMETER = FUNCTIONS_PARAMETER_PREFIX + "PublisherFunction"
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    logs = tmp_path_factory.mktemp("republish") / "functions.log"
    with LocalCloud(ROOT / "template.yaml", project_root=ROOT, logs=str(logs)).start(
        port=0, api_port=0, site_port=0
    ) as started:
        _publish_outputs(started)
        yield started


def herald(cloud: LocalCloud, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args, "--endpoint-url", cloud.endpoint_url])
    out, err = capsys.readouterr()
    return code, out, err


def site_files(cloud: LocalCloud) -> dict[str, bytes]:
    s3 = cloud.client("s3")
    bucket = cloud.resources.outputs["SiteBucketName"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{COMMUNITY}/").get("Contents", [])
    return {
        o["Key"].removeprefix(f"{COMMUNITY}/"): s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }


def publisher_document(cloud: LocalCloud) -> dict[str, Any]:
    value = cloud.client("ssm").get_parameter(Name=PUBLISHER_PARAMETER)["Parameter"]["Value"]
    return dict(json.loads(value))


def test_a_changed_site_url_shows_in_the_republished_pages(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    old_site = cloud.site_url
    assert old_site is not None
    # PublicSiteUrl is left empty: the template names the distribution, which the local cloud serves.
    published = publisher_document(cloud)
    assert published["environment"]["PUBLIC_SITE_URL"] == old_site
    for lid in ("ApiFunction", "FanoutPlannerFunction"):
        assert cloud.resources.functions[lid].environment["PUBLIC_SITE_URL"] == old_site

    s3 = cloud.client("s3")
    s3.put_object(
        Bucket=cloud.resources.uploads_bucket,
        Key=f"posts/{COMMUNITY}/ferry.txt",
        Body=b"The ferry to Lesbos leaves at 7 tomorrow. #Ferry",
    )
    cloud.wait_until_idle(timeout=90)
    before = site_files(cloud)
    post_pages = [p for p in before if p.startswith("posts/") and p.endswith("/index.html")]
    assert len(post_pages) == 1, sorted(before)
    assert f"{old_site}/{COMMUNITY}/".encode() in before["feed.json"]

    # A deploy with PublicSiteUrl=https://news.example.org gives the publisher that environment.
    changed = {**published, "environment": {**published["environment"], "PUBLIC_SITE_URL": NEW_SITE}}
    ssm = cloud.client("ssm")
    ssm.put_parameter(Name=PUBLISHER_PARAMETER, Value=json.dumps(changed), Type="String", Overwrite=True)
    try:
        code, out, err = herald(cloud, capsys, "republish", COMMUNITY)
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].startswith(f"republished {COMMUNITY} on the local cloud at {cloud.endpoint_url}: ")
        assert lines[1] == f"  its pages, feeds and QR code name {NEW_SITE}/{COMMUNITY}/"
        after = site_files(cloud)
        assert set(after) == set(before)
        for path in ("index.html", "join/index.html", "feed.atom", "feed.json", post_pages[0]):
            assert f"{NEW_SITE}/{COMMUNITY}/".encode() in after[path], path
            assert old_site.encode() not in after[path], path
        assert after["qr.svg"] != before["qr.svg"]  # the join link it encodes is the new one
        feed = json.loads(after["feed.json"])
        assert feed["home_page_url"] == f"{NEW_SITE}/{COMMUNITY}/"
        assert all(item["url"].startswith(f"{NEW_SITE}/{COMMUNITY}/posts/") for item in feed["items"])

        # Once more: the bucket already holds that; only the two pages with the local cloud's join
        # button are written again (its browser-like subscription is drawn anew in each worker).
        data = json.loads(herald(cloud, capsys, "republish", COMMUNITY, "--json")[1])
        assert set(data["written"]) <= {"index.html", "join/index.html"} and data["deleted"] == []
        assert data["unchanged"] == data["rendered"] - len(data["written"]) >= len(after) - 2
        assert data["mode"] == "full" and data["invalidation"] is None
    finally:
        ssm.put_parameter(
            Name=PUBLISHER_PARAMETER, Value=json.dumps(published), Type="String", Overwrite=True
        )


def test_a_community_that_does_not_exist_is_refused_in_one_line(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = cloud.resources.outputs["SiteBucketName"]
    with pytest.raises(SystemExit) as failed:  # one line on stderr and exit status 1, as a command
        herald(cloud, capsys, "republish", "nobody-here")
    assert str(failed.value) == (
        "herald republish: the publisher failed: RepublishRefused: "
        "no community 'nobody-here': it has no profile and no posts"
    )
    assert cloud.client("s3").list_objects_v2(Bucket=bucket, Prefix="nobody-here/").get("KeyCount") == 0

    with pytest.raises(SystemExit) as refused:
        herald(cloud, capsys, "republish", "Not/An/Id")
    assert str(refused.value).startswith("herald republish: 'Not/An/Id' is not a community id")
