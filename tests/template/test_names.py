"""template.yaml's physical names: unique per stack, within their services' limits, kept by the stage stacks.

Names are evaluated as CloudFormation would for a given stack (name, id, account, region) with the local
cloud's resolver, over the template after the SAM transform (SAM copies names into what it generates).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from cfnlint.decode import decode_str
from cfnlint.helpers import REGIONS
from cfnlint.template import Template as LintTemplate

from herald_tools.localcloud.template import Resolver, Template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
LONGEST_REGION = max(REGIONS, key=len)
#: CloudFormation's limit: 1 to 128 characters, a letter first, then letters, digits and hyphens.
STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")
LONGEST_STACK_NAME = ("Herald-Feature-9" * 8)[:128]


@dataclass(frozen=True)
class Limit:
    """How long a name may be, which characters it may hold, and where it must be unique."""

    max_length: int | None
    charset: str
    scope: str  # "region": per account and region; "account": per account; "global": across accounts


#: The name property of each resource type that can carry one (a path into Properties) and its limits,
#: from each service's documentation (the CloudFormation resource reference and its schemas).
NAMED: dict[str, tuple[tuple[str, ...], Limit]] = {
    "AWS::S3::Bucket": (("BucketName",), Limit(63, r"[a-z0-9][a-z0-9.-]*[a-z0-9]", "global")),
    "AWS::Lambda::LayerVersion": (("LayerName",), Limit(140, r"[A-Za-z0-9_-]+", "region")),
    "AWS::Lambda::Function": (("FunctionName",), Limit(64, r"[A-Za-z0-9_-]+", "region")),
    "AWS::CloudFront::OriginAccessControl": (
        ("OriginAccessControlConfig", "Name"),
        Limit(64, r"[A-Za-z0-9_.-]+", "account"),
    ),
    "AWS::CloudFront::Function": (("Name",), Limit(64, r"[A-Za-z0-9_-]+", "account")),
    "AWS::CloudFront::ResponseHeadersPolicy": (
        ("ResponseHeadersPolicyConfig", "Name"),
        Limit(128, r"[A-Za-z0-9_-]+", "account"),
    ),
    "AWS::CloudFront::CachePolicy": (("CachePolicyConfig", "Name"), Limit(128, r"[A-Za-z0-9_-]+", "account")),
    "AWS::WAFv2::WebACL": (("Name",), Limit(128, r"[A-Za-z0-9_-]+", "region")),
    # API Gateway does not require unique names; the stack's name tells its API apart in the console.
    "AWS::ApiGateway::RestApi": (("Name",), Limit(None, r"[A-Za-z0-9_-]+", "region")),
    "AWS::CloudWatch::Alarm": (("AlarmName",), Limit(255, r"[^\s].*", "region")),
    "AWS::CloudWatch::Dashboard": (("DashboardName",), Limit(255, r"[A-Za-z0-9_-]+", "account")),
    "AWS::Logs::LogGroup": (("LogGroupName",), Limit(512, r"[.\-_/#A-Za-z0-9]+", "region")),
    "AWS::SQS::Queue": (("QueueName",), Limit(80, r"[A-Za-z0-9_-]+(\.fifo)?", "region")),
    "AWS::SNS::Topic": (("TopicName",), Limit(256, r"[A-Za-z0-9_-]+(\.fifo)?", "region")),
    "AWS::DynamoDB::Table": (("TableName",), Limit(255, r"[A-Za-z0-9_.-]+", "region")),
    "AWS::SecretsManager::Secret": (("Name",), Limit(512, r"[A-Za-z0-9/_+=.@-]+", "region")),
    "AWS::SSM::Parameter": (("Name",), Limit(1011, r"[A-Za-z0-9/_.-]+", "region")),
    "AWS::IAM::Role": (("RoleName",), Limit(64, r"[A-Za-z0-9+=,.@_-]+", "account")),
    "AWS::IAM::ManagedPolicy": (("ManagedPolicyName",), Limit(128, r"[A-Za-z0-9+=,.@_-]+", "account")),
}
#: Properties ending in Name that name something else (another resource, a metric, a stage), not the
#: resource itself.
NOT_NAMES = {
    ("AWS::ApiGateway::Deployment", "StageName"),
    ("AWS::ApiGateway::Stage", "StageName"),
    ("AWS::CloudWatch::Alarm", "MetricName"),
    ("AWS::Lambda::EventSourceMapping", "FunctionName"),
    ("AWS::Lambda::Permission", "FunctionName"),
    ("AWS::SNS::Topic", "DisplayName"),
}


@dataclass(frozen=True)
class Stack:
    name: str
    stage: str = "dev"
    account: str = ACCOUNT
    region: str = "us-east-1"

    @property
    def uuid(self) -> str:
        """The uuid CloudFormation puts in the stack id (one per stack, random there)."""
        h = hashlib.sha256(f"{self.account}/{self.region}/{self.name}/{self.stage}".encode()).hexdigest()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    @property
    def stack_id(self) -> str:
        return f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.name}/{self.uuid}"


@dataclass
class StackResolver(Resolver):
    """The local cloud's resolver, for any stack: its own stack id and generated names of resources."""

    stack_id: str = ""

    def pseudo(self, name: str) -> Any:
        return self.stack_id if name == "AWS::StackId" else super().pseudo(name)


def _label(stack: Stack) -> str:
    return f"{stack.name[:24]}/{stack.stage}/{stack.account[-4:]}/{stack.region}"


def _generated_name(stack: Stack, logical_id: str) -> str:
    """A name CloudFormation makes up for an unnamed resource: stack name, logical id, a random part."""
    return f"{stack.name}-{logical_id}"[:51] + "-" + stack.uuid[-12:].upper()


@pytest.fixture(scope="module")
def expanded() -> Template:
    template, errors = decode_str(TEMPLATE_PATH.read_text(encoding="utf-8"))
    assert not errors and template is not None
    cfn = LintTemplate(str(TEMPLATE_PATH), template, ["us-east-1"])
    assert not cfn.transform()
    return Template(path=TEMPLATE_PATH, body=cfn.template)


def _resolver(template: Template, stack: Stack) -> StackResolver:
    return StackResolver(
        template,
        template.parameter_values({"Stage": stack.stage}),
        ref=lambda lid: _generated_name(stack, lid),
        getatt=lambda lid, attr: (
            f"arn:aws:x:{stack.region}:{stack.account}:{_generated_name(stack, lid)}/{attr}"
        ),
        account_id=stack.account,
        region=stack.region,
        stack_name=stack.name,
        stack_id=stack.stack_id,
    )


def _dig(props: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = props
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


#: SAM gives each layer version a logical id of the layer's and a hash of its content.
_SAM_LAYER_ID = re.compile(r"(?P<lid>\w+?)[0-9a-f]{10}")


def _template_id(template: Template, lid: str) -> str:
    """The logical id ``lid`` has in template.yaml (SAM's layer versions carry a hash after it)."""
    match = _SAM_LAYER_ID.fullmatch(lid)
    if template.resources[lid]["Type"] == "AWS::Lambda::LayerVersion" and match:
        return match["lid"]
    return lid


def _type(template: Template, lid: str) -> str:
    return next(r["Type"] for k, r in template.resources.items() if _template_id(template, k) == lid)


def names(template: Template, stack: Stack) -> dict[str, str]:
    """Each explicitly named resource's physical name in ``stack`` (by its logical id in template.yaml),
    whether or not its Condition holds with the stack's parameters (other parameters would create it)."""
    resolver = _resolver(template, stack)
    found: dict[str, str] = {}
    for lid, resource in template.resources.items():
        if resource["Type"] not in NAMED:
            continue
        path, _ = NAMED[resource["Type"]]
        value = _dig(resource.get("Properties") or {}, path)
        if value is not None:
            found[_template_id(template, lid)] = str(resolver.resolve(value))
    return found


def _limit(template: Template, lid: str) -> Limit:
    return NAMED[_type(template, lid)][1]


#: Stacks that must not collide, side by side: the stage stacks, others in the same account and region,
#: and same-named stacks in another region and another account.
STACKS = [
    Stack("herald-dev"),
    Stack("herald-prod", stage="prod"),
    Stack("herald-dev", region="eu-west-1"),
    Stack("herald-dev", account=OTHER_ACCOUNT),
    Stack("herald-dev-2"),
    Stack("herald-demo"),
    Stack("herald-dev", stage="prod"),
    Stack("Herald-Feature-Login"),
    Stack("herald-feature-login", stage="prod"),
    Stack(LONGEST_STACK_NAME, stage="prod", region=LONGEST_REGION),
    Stack(LONGEST_STACK_NAME, region=LONGEST_REGION),
]


def test_every_name_property_is_known(expanded: Template) -> None:
    """A resource naming itself through a property this file does not check would escape the tests below."""
    for lid, resource in expanded.resources.items():
        rtype = resource["Type"]
        for key in resource.get("Properties") or {}:
            if key.endswith("Name") and (rtype, key) not in NOT_NAMES:
                assert rtype in NAMED and NAMED[rtype][0][0] == key, f"{lid} ({rtype}) is named by {key}"


def test_the_stacks_under_test_are_valid_stack_names() -> None:
    assert len(LONGEST_STACK_NAME) == 128
    for stack in STACKS:
        assert STACK_NAME.fullmatch(stack.name), stack.name


def test_named_resources_are_the_ones_expected(expanded: Template) -> None:
    named = set(names(expanded, Stack("herald-prod", stage="prod")))
    assert named >= {
        "HeraldLayer",
        "UploadsBucket",
        "SiteOriginAccessControl",
        "SiteIndexFunction",
        "SiteResponseHeadersPolicy",
        "ApiRateLimits",
        "HeraldApi",
        "OperationsDashboard",
        "IngestFunctionLogGroup",
    }


#: Every two of them that can exist side by side (a stack's name is unique in its account and region).
PAIRS = [
    (a, b)
    for a, b in itertools.combinations(STACKS, 2)
    if (a.name, a.account, a.region) != (b.name, b.account, b.region)
]


@pytest.mark.parametrize(("one", "other"), PAIRS, ids=[f"{_label(a)}~{_label(b)}" for a, b in PAIRS])
def test_two_stacks_never_share_a_physical_name(expanded: Template, one: Stack, other: Stack) -> None:
    first, second = names(expanded, one), names(expanded, other)
    for lid in set(first) & set(second):
        scope = _limit(expanded, lid).scope
        shared = {
            "region": one.account == other.account and one.region == other.region,
            "account": one.account == other.account,
            "global": True,
        }[scope]
        if shared:
            assert first[lid] != second[lid], f"{lid} is {first[lid]!r} in both {one} and {other}"


@pytest.mark.parametrize("stack", STACKS, ids=_label)
def test_every_name_is_within_its_service_limits(expanded: Template, stack: Stack) -> None:
    for lid, name in names(expanded, stack).items():
        limit = _limit(expanded, lid)
        assert limit.max_length is None or len(name) <= limit.max_length, f"{lid}: {name!r} ({len(name)})"
        assert re.fullmatch(limit.charset, name), f"{lid}: {name!r}"
        if _type(expanded, lid) == "AWS::S3::Bucket":
            assert ".." not in name and not re.fullmatch(r"[\d.]+", name), f"{lid}: {name!r}"


@pytest.mark.parametrize("stack", STACKS, ids=_label)
def test_the_queue_policy_admits_the_bucket_the_stack_names(expanded: Template, stack: Stack) -> None:
    resolver = _resolver(expanded, stack)
    bucket = names(expanded, stack)["UploadsBucket"]
    policy = expanded.resources["IngestQueuePolicy"]["Properties"]["PolicyDocument"]
    (allow,) = [st for st in policy["Statement"] if st["Effect"] == "Allow"]
    assert resolver.resolve(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == f"arn:aws:s3:::{bucket}"


def test_the_stage_stacks_keep_the_names_they_were_created_with(expanded: Template) -> None:
    """An update of herald-dev or herald-prod replaces nothing: a new BucketName would mean a new,
    empty uploads bucket (the old one retained beside it)."""
    for stage in ("dev", "prod"):
        region = "eu-west-1"
        got = names(expanded, Stack(f"herald-{stage}", stage=stage, region=region))
        assert got["UploadsBucket"] == f"herald-{stage}-uploads-{ACCOUNT}-{region}"
        assert got["HeraldLayer"] == f"herald-{stage}-shared"
        assert got["SiteOriginAccessControl"] == f"herald-{stage}-site-{region}"
        assert got["SiteIndexFunction"] == f"herald-{stage}-site-index-{region}"
        assert got["SiteResponseHeadersPolicy"] == f"herald-{stage}-site-security-{region}"
        assert got["ApiRateLimits"] == f"herald-{stage}-api"
        assert got["HeraldApi"] == f"herald-{stage}-api"


def test_other_stacks_name_global_resources_by_their_label(expanded: Template) -> None:
    stack = Stack("herald-feature-login")
    got = names(expanded, stack)
    assert got["UploadsBucket"] == f"herald-dev-uploads-{stack.uuid}"
    for lid in ("SiteOriginAccessControl", "SiteIndexFunction", "SiteResponseHeadersPolicy", "ApiRateLimits"):
        assert got[lid].startswith("herald-dev-") and got[lid].endswith(stack.uuid), (lid, got[lid])
    assert got["HeraldLayer"] == "herald-feature-login-shared"


def test_a_stack_of_another_name_provisions_and_its_uploads_reach_ingest() -> None:
    """The uuid-named uploads bucket still notifies the ingest queue (the local cloud on moto, playing a
    stack other than herald-dev: its stack id's uuid is all zeros)."""
    import boto3
    from moto import mock_aws

    from herald_tools.localcloud.provision import provision

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        res = provision(TEMPLATE_PATH, session, stack_name="herald-alice")
        assert res.uploads_bucket == res.outputs["UploadsBucketName"]
        assert res.uploads_bucket == "herald-dev-uploads-00000000-0000-0000-0000-000000000000"
        session.client("s3").put_object(Bucket=res.uploads_bucket, Key="posts/demo/a.md", Body=b"hello")
        sqs = session.client("sqs")
        received = sqs.receive_message(
            QueueUrl=res.ingest_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        # S3 sends a test event when the notification is set; the upload's event follows it.
        bodies = [json.loads(m["Body"]) for m in received.get("Messages", [])]
        keys = [unquote_plus(r["s3"]["object"]["key"]) for body in bodies for r in body.get("Records", [])]
        assert keys == ["posts/demo/a.md"]
