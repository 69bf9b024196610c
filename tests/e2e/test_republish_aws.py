"""``herald republish COMMUNITY --stack NAME`` against a moto server: a stack whose outputs name a
publisher function (moto's Lambda without Docker) and a CloudFront distribution.

moto's Lambda without Docker answers an Invoke with the request's own payload, or with the next
answer queued on the server (``/moto-api/static/lambda-simple/response``); it never sets
``FunctionError``, so the answer Lambda gives for a function that raised cannot be had here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from herald_tools.lifecycle import _invoke_aws, republish_event
from herald_tools.stack import resolve
from tests.e2e.moto_server import REGION, aws_fixture, endpoint_fixture, moto_api, run  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
COMMUNITY = "harbour-line"
SITE = "https://d111111abcdef8.cloudfront.net"
pytestmark = pytest.mark.e2e

TEMPLATE = json.dumps(
    {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"DistributionId": {"Type": "String"}},
        "Resources": {
            "PublisherFunctionRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            },
            "PublisherFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "Handler": "app.handler",
                    "Role": {"Fn::GetAtt": ["PublisherFunctionRole", "Arn"]},
                    "Code": {"ZipFile": "def handler(event, context):\n    return event\n"},
                },
            },
        },
        "Outputs": {
            "PublisherFunctionName": {"Value": {"Ref": "PublisherFunction"}},
            "SiteDistributionId": {"Value": {"Ref": "DistributionId"}},
        },
    }
)


class Stack:
    """A stack on the moto server with a publisher function and the site's distribution."""

    def __init__(self, session: boto3.Session, name: str) -> None:
        self.session, self.name = session, name
        cloudfront = session.client("cloudfront")
        self.distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": name,
                "Comment": name,
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "site",
                            "DomainName": f"{name}-site.s3.{REGION}.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "site",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "MinTTL": 0,
                    "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                },
            }
        )["Distribution"]["Id"]
        cloudformation = session.client("cloudformation")
        cloudformation.create_stack(
            StackName=name,
            TemplateBody=TEMPLATE,
            Parameters=[{"ParameterKey": "DistributionId", "ParameterValue": self.distribution}],
            Capabilities=["CAPABILITY_IAM"],
        )
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert outputs["SiteDistributionId"] == self.distribution
        self.function = outputs["PublisherFunctionName"]

    def invalidations(self) -> list[list[str]]:
        """The paths of each invalidation of the distribution."""
        cloudfront = self.session.client("cloudfront")
        listed = cloudfront.list_invalidations(DistributionId=self.distribution)["InvalidationList"]
        return [
            cloudfront.get_invalidation(DistributionId=self.distribution, Id=i["Id"])["Invalidation"][
                "InvalidationBatch"
            ]["Paths"]["Items"]
            for i in listed.get("Items", [])
        ]


@pytest.fixture(scope="module", autouse=True)
def lambda_without_docker(endpoint: str) -> None:
    moto_api(endpoint, "config", {"lambda": {"use_docker": False}})


def queue_answers(endpoint: str, *answers: Any) -> None:
    """What the publisher answers to the next Invokes, in order (as JSON)."""
    moto_api(
        endpoint,
        "static/lambda-simple/response",
        {"results": [json.dumps(a) for a in answers], "region": REGION},
    )


def answer(written: list[str], deleted: list[str]) -> dict[str, Any]:
    """The publisher's answer to a republish (functions/publisher/app.py ``republish``)."""
    return {
        "community": COMMUNITY,
        "mode": "full",
        "rendered": 9,
        "written": written,
        "unchanged": 9 - len(written),
        "deleted": deleted,
        "url": f"{SITE}/{COMMUNITY}/",
    }


def herald_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``herald ARGS`` as a command of its own, in this environment (the moto server's)."""
    return subprocess.run(
        [sys.executable, "-m", "herald_tools.cli", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command wrote on stderr, having written nothing on stdout."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_publisher_is_invoked_with_its_republish_event(
    aws: boto3.Session, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Stack(aws, "herald-republish-event")
    target = resolve(stack=stack.name, region=REGION)
    assert target.output("PublisherFunctionName") == stack.function
    # Nothing queued: Lambda answers with the event it was sent.
    assert _invoke_aws(target, republish_event(COMMUNITY)) == {
        "v": 1,
        "kind": "republish",
        "community": COMMUNITY,
    }

    # An answer that is not a republish result (the event itself here; a publisher deployed before
    # `herald republish` answers {"batchItemFailures": []}) ends the command in one line.
    unexpected_answers: list[dict[str, Any] | None] = [None, {"batchItemFailures": []}]
    for unexpected in unexpected_answers:
        if unexpected is not None:
            queue_answers(endpoint, unexpected)
        with pytest.raises(SystemExit) as failed:
            run(capsys, "republish", COMMUNITY, "--stack", stack.name, "--region", REGION, "--json")
        [line] = str(failed.value).splitlines()
        assert line.startswith("herald republish: the publisher's answer is not a republish result"), line
        assert json.dumps(unexpected or republish_event(COMMUNITY)) in line
        assert capsys.readouterr().out == ""
    assert stack.invalidations() == []


def test_a_republish_that_wrote_files_invalidates_the_communitys_paths(
    aws: boto3.Session, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Stack(aws, "herald-republish-written")
    republish = ("republish", COMMUNITY, "--stack", stack.name, "--region", REGION)

    queue_answers(endpoint, answer(written=["index.html", "feed.json", "qr.svg"], deleted=[]))
    code, out, err = run(capsys, *republish)
    assert code == 0, err
    [invalidation] = aws.client("cloudfront").list_invalidations(DistributionId=stack.distribution)[
        "InvalidationList"
    ]["Items"]
    assert out.splitlines() == [
        f"republished {COMMUNITY} on stack {stack.name}: 9 file(s) rendered, 3 written, 6 unchanged, "
        "0 deleted",
        f"  its pages, feeds and QR code name {SITE}/{COMMUNITY}/",
        f"  CloudFront invalidation {invalidation['Id']} of /{COMMUNITY}/*",
    ]
    assert stack.invalidations() == [[f"/{COMMUNITY}/*"]]

    # Nothing written or deleted: nothing to invalidate.
    queue_answers(endpoint, answer(written=[], deleted=[]))
    code, out, err = run(capsys, *republish, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["invalidation"] is None and data["where"] == f"stack {stack.name}"
    assert {k: data[k] for k in answer([], [])} == answer([], [])
    assert len(stack.invalidations()) == 1

    # Only deleted files: their cached copies go too.
    queue_answers(endpoint, answer(written=[], deleted=["posts/old/index.html"]))
    code, out, err = run(capsys, *republish, "--json")
    assert code == 0, err
    assert json.loads(out)["invalidation"] is not None
    assert stack.invalidations() == [[f"/{COMMUNITY}/*"], [f"/{COMMUNITY}/*"]]

    # --no-invalidate leaves CloudFront alone, whatever was written.
    queue_answers(endpoint, answer(written=["index.html"], deleted=[]))
    code, out, err = run(capsys, *republish, "--no-invalidate")
    assert code == 0, err
    assert len(out.splitlines()) == 2 and "CloudFront" not in out
    assert len(stack.invalidations()) == 2


def test_an_error_answer_is_one_line_and_a_failed_exit(aws: boto3.Session, endpoint: str) -> None:
    stack = Stack(aws, "herald-republish-error")
    # What Lambda's payload is when the publisher raised (without FunctionError here: see above).
    refused = {
        "errorType": "RepublishRefused",
        "errorMessage": f"no community {COMMUNITY!r}: it has no profile and no posts",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678",
        "stackTrace": ['  File "/var/task/app.py", line 151, in republish\n'],
    }
    queue_answers(endpoint, refused)
    result = herald_process("republish", COMMUNITY, "--stack", stack.name, "--region", REGION)
    line = one_line(result)
    assert line.startswith("herald republish: the publisher's answer is not a republish result"), line
    assert "RepublishRefused" in line and "Traceback" not in result.stderr
    assert stack.invalidations() == []


def test_a_community_id_that_is_not_one_is_refused_before_any_invocation(
    aws: boto3.Session, endpoint: str
) -> None:
    stack = Stack(aws, "herald-republish-invalid")
    sentinel = {"queued": "before the command"}
    queue_answers(endpoint, sentinel)
    result = herald_process("republish", "Not/An/Id", "--stack", stack.name, "--region", REGION)
    assert one_line(result).startswith("herald republish: 'Not/An/Id' is not a community id (")
    # The queued answer is still there: the command invoked nothing.
    target = resolve(stack=stack.name, region=REGION)
    assert _invoke_aws(target, republish_event(COMMUNITY)) == sentinel
    assert stack.invalidations() == []
