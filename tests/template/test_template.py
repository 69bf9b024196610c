"""template.yaml: it lints clean, and the security and wiring properties that could quietly regress hold.

The checks read the template as written (``raw``) and, where SAM generates resources (roles, event source
mappings), as CloudFormation sees it after the SAM transform (``expanded``). Both come from cfn-lint,
which also understands the short intrinsic tags (!Ref, !Sub, !GetAtt).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode import decode_str
from cfnlint.template import Template

from herald_tools.localcloud.template import Resolver
from herald_tools.localcloud.template import Template as LocalTemplate

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
LINT_REGIONS = ["us-east-1", "eu-west-1"]

#: Outputs the CLI resolves names from.
CLI_OUTPUTS = {
    "UploadsBucketName",
    "IngestQueueUrl",
    "IngestQueueName",
    "IngestDeadLetterQueueUrl",
    "ContentTableName",
    "IngestFunctionName",
    "AlarmTopicArn",
    "HeraldLayerArn",
}
#: Logical ids the local cloud builds on moto.
LOGICAL_IDS = {
    "HeraldLayer",
    "UploadsBucket",
    "UploadsBucketPolicy",
    "IngestQueue",
    "IngestDeadLetterQueue",
    "IngestQueuePolicy",
    "ContentTable",
    "IngestFunction",
    "IngestFunctionLogGroup",
    "AlarmTopic",
    "AlarmEmailSubscription",
    "IngestDeadLetterAlarm",
    "IngestErrorsAlarm",
    "IngestQueueAgeAlarm",
}
#: Prefixes editors upload to (posts, exports, community settings); anything else (rejected/
#: above all) must never notify ingest.
UPLOAD_PREFIXES = {"posts/", "exports/", "communities/"}


# ----------------------------------------------------------------------------- loading


def _decode(text: str) -> dict[str, Any]:
    template, errors = decode_str(text)
    assert not errors, [str(e) for e in errors]
    assert template is not None
    return template


@pytest.fixture(scope="module")
def text() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def raw(text: str) -> dict[str, Any]:
    return _decode(text)


@pytest.fixture(scope="module")
def expanded(text: str) -> dict[str, Any]:
    cfn = Template(str(TEMPLATE_PATH), _decode(text), ["us-east-1"])
    matches = cfn.transform()
    assert not matches, [str(m) for m in matches]
    return cfn.template


def _lint(text: str) -> list[str]:
    return [
        f"{m.rule.id} {m.message} (line {m.linenumber})"
        for m in lint(text, config=ManualArgs(regions=LINT_REGIONS))
    ]


# ----------------------------------------------------------------------------- helpers


def _resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in template["Resources"].items() if res.get("Type") == type_}


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties", {})


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _ref_target(value: Any) -> str | None:
    """The logical id a !Ref or !GetAtt points at (None for anything else)."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else att.split(".", 1)[0]
    return None


#: What every use of the site's URL is: PublicSiteUrl when given, else the distribution's domain.
SITE_URL = {
    "Fn::If": [
        "HasPublicSiteUrl",
        {"Ref": "PublicSiteUrl"},
        {"Fn::Sub": "https://${SiteDistribution.DomainName}"},
    ]
}


def _sub_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return None


def _branches(values: list[Any]) -> Iterator[dict[str, Any]]:
    """Every value of a list whose entries may be ``Fn::If`` (both branches; AWS::NoValue dropped)."""
    for value in values:
        if isinstance(value, dict) and "Fn::If" in value:
            yield from _branches(list(value["Fn::If"][1:]))
        elif isinstance(value, dict) and value.get("Ref") == "AWS::NoValue":
            continue
        else:
            yield value


def _statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement of identity policies (roles, policies) in the expanded template."""
    for lid, res in template["Resources"].items():
        props = _props(res)
        if res["Type"] == "AWS::IAM::Role":
            for policy in _branches(props.get("Policies", [])):
                for st in _listify(policy["PolicyDocument"]["Statement"]):
                    yield lid, st
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for st in _listify(props["PolicyDocument"]["Statement"]):
                yield lid, st


def _function_timeout(raw: dict[str, Any], function: dict[str, Any]) -> int:
    timeout = _props(function).get("Timeout", raw.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    return int(timeout)


def _denies_insecure_transport(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [
        st
        for st in statements
        if st.get("Effect") == "Deny"
        and st.get("Principal") in ("*", {"AWS": "*"})
        and action in _listify(st.get("Action"))
        and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]


# ----------------------------------------------------------------------------- lint


def test_template_lints_clean(text: str) -> None:
    assert _lint(text) == []


PLANTED = [
    pytest.param(
        "            BatchSize: 10\n",
        "            BatchSize: 10\n            Bogus: 1\n",
        "E0001",
        id="unknown-sqs-event-property",
    ),
    pytest.param(
        "        Uploads:\n          Type: SQS\n",
        "        Uploads:\n          Type: SQSS\n",
        "E0001",
        id="unknown-event-type",
    ),
    pytest.param(
        "Value: !GetAtt IngestDeadLetterQueue.QueueName",
        "Value: !GetAtt MissingQueue.QueueName",
        "E1010",
        id="getatt-to-missing-resource",
    ),
    pytest.param("    Runtime: python3.13\n", "    Runtime: python3.99\n", "E3030", id="bad-runtime"),
    pytest.param(
        "              MaximumConcurrency: 5\n",
        "              MaximumConcurrency: 1\n",
        "E3034",
        id="sqs-scaling-below-minimum",
    ),
    pytest.param(
        "    Layers:\n      - !Ref HeraldLayer\n",
        "    Layers:\n      - !Ref HeraldLayr\n",
        "E1020",
        id="ref-to-missing-layer",
    ),
]


@pytest.mark.parametrize(("anchor", "planted", "rule"), PLANTED)
def test_lint_catches_planted_errors(text: str, anchor: str, planted: str, rule: str) -> None:
    assert text.count(anchor) == 1, f"the anchor {anchor!r} must occur once in template.yaml"
    problems = _lint(text.replace(anchor, planted))
    assert any(p.startswith(rule) for p in problems), problems


# ----------------------------------------------------------------------------- interface


def test_logical_ids_and_outputs(raw: dict[str, Any]) -> None:
    assert raw["Transform"] == "AWS::Serverless-2016-10-31"
    assert set(raw["Resources"]) >= LOGICAL_IDS
    assert set(raw["Outputs"]) >= CLI_OUTPUTS


def test_parameters(raw: dict[str, Any]) -> None:
    params = raw["Parameters"]
    assert params["Stage"]["AllowedValues"] == ["dev", "prod"]
    assert params["Stage"]["Default"] == "dev"
    assert params["LogLevel"]["Default"] == "INFO"
    assert 30 in params["LogRetentionDays"]["AllowedValues"]
    assert str(params["LogRetentionDays"]["Default"]) == "30"
    assert params["AlarmEmail"]["Default"] == ""
    assert str(params["MaxPostBytes"]["Default"]) == "65536"
    assert str(params["MaxExportBytes"]["Default"]) == "5242880"
    assert set(raw["Conditions"]) >= {"HasAlarmEmail", "IsProd"}


def test_functions_run_on_the_layer_they_are_built_for(raw: dict[str, Any]) -> None:
    glob = raw["Globals"]["Function"]
    layer = raw["Resources"]["HeraldLayer"]
    assert _ref_target(glob["Layers"][0]) == "HeraldLayer"
    assert _props(layer)["ContentUri"].rstrip("/") == "shared"
    for lid, fn in _resources(raw, "AWS::Serverless::Function").items():
        runtime = _props(fn).get("Runtime", glob["Runtime"])
        archs = _props(fn).get("Architectures", glob["Architectures"])
        assert runtime in _props(layer)["CompatibleRuntimes"], lid
        assert set(archs) <= set(_props(layer)["CompatibleArchitectures"]), lid
        # shared/Makefile builds it (mk/build_layer.py: requirements/layer.txt for this runtime,
        # tests/template/test_locks.py checks that they agree).
        assert layer["Metadata"]["BuildMethod"] == "makefile", lid
        assert [layer["Metadata"]["BuildArchitecture"]] == archs, lid


def test_common_environment(raw: dict[str, Any]) -> None:
    env = raw["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "herald"
    assert _ref_target(env["POWERTOOLS_LOG_LEVEL"]) == "LogLevel"
    assert _ref_target(env["HERALD_STAGE"]) == "Stage"
    ingest = _props(raw["Resources"]["IngestFunction"])["Environment"]["Variables"]
    assert _ref_target(ingest["CONTENT_TABLE"]) == "ContentTable"
    assert _ref_target(ingest["UPLOADS_BUCKET"]) == "UploadsBucket"
    assert _ref_target(ingest["MAX_POST_BYTES"]) == "MaxPostBytes"
    assert _ref_target(ingest["MAX_EXPORT_BYTES"]) == "MaxExportBytes"
    assert _ref_target(ingest["INGEST_QUEUE_URL"]) == "IngestQueue"
    assert _ref_target(ingest["VARIANT_WAIT_S"]) == "VariantWaitSeconds"


def test_ingest_may_send_only_to_its_own_queue(expanded: dict[str, Any]) -> None:
    """The check of a waiting language variant: a delayed message to the ingest queue, nothing else."""
    sends = [
        st
        for lid, st in _statements(expanded)
        if lid == "IngestFunctionRole" and any(a.startswith("sqs:Send") for a in _listify(st["Action"]))
    ]
    assert len(sends) == 1 and _listify(sends[0]["Action"]) == ["sqs:SendMessage"]
    assert [_ref_target(r) for r in _listify(sends[0]["Resource"])] == ["IngestQueue"]


# ----------------------------------------------------------------------------- buckets


def test_buckets_are_private_encrypted_and_tls_only(raw: dict[str, Any]) -> None:
    buckets = _resources(raw, "AWS::S3::Bucket")
    assert buckets
    policies = _resources(raw, "AWS::S3::BucketPolicy")
    for lid, bucket in buckets.items():
        props = _props(bucket)
        pab = props["PublicAccessBlockConfiguration"]
        flags = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        assert all(pab.get(flag) is True for flag in flags), lid
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        algorithms = {rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in sse}
        assert algorithms and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}, lid
        assert props["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced", lid

        mine = [p for p in policies.values() if _ref_target(_props(p)["Bucket"]) == lid]
        assert mine, f"{lid} has no bucket policy"
        statements = [st for p in mine for st in _listify(_props(p)["PolicyDocument"]["Statement"])]
        denies = _denies_insecure_transport(statements, "s3:*")
        assert denies, f"{lid} does not deny plain-HTTP access"
        resources = [r for st in denies for r in _listify(st["Resource"])]
        assert any(_ref_target(r) == lid for r in resources), "the bucket itself"
        assert any((_sub_string(r) or "").endswith("/*") for r in resources), "the bucket's objects"
        for st in statements:
            if st.get("Effect") == "Allow":
                assert st.get("Principal") not in ("*", {"AWS": "*"}), f"{lid} allows everyone"


def test_site_bucket_is_versioned_and_old_versions_expire(raw: dict[str, Any]) -> None:
    props = _props(raw["Resources"]["SiteBucket"])
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    rules = [r for r in props["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    assert any(0 < r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 0) <= 90 for r in rules)
    assert any(r.get("ExpiredObjectDeleteMarker") is True for r in rules)
    assert any(r.get("AbortIncompleteMultipartUpload") for r in rules)


#: Resource types that hold what Herald cannot rebuild, or the record of what it did (logs).
STATEFUL_TYPES = {
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::SecretsManager::Secret",
    "AWS::SSM::Parameter",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBCluster",
    "AWS::EFS::FileSystem",
}
SNAPSHOT_TYPES = {"AWS::RDS::DBInstance", "AWS::RDS::DBCluster"}


def test_every_stateful_resource_survives_stack_deletion_and_replacement(expanded: dict[str, Any]) -> None:
    stateful = {lid: res for lid, res in expanded["Resources"].items() if res["Type"] in STATEFUL_TYPES}
    expected = {"UploadsBucket", "SiteBucket", "ContentTable", "MembersTable", "MemberTokenSecret"}
    assert expected <= set(stateful)
    for lid, res in stateful.items():
        kept = {"Retain", "RetainExceptOnCreate"} | ({"Snapshot"} if res["Type"] in SNAPSHOT_TYPES else set())
        assert res.get("DeletionPolicy") in kept, f"{lid} ({res['Type']}) is deleted with the stack"
        assert res.get("UpdateReplacePolicy") in kept - {"RetainExceptOnCreate"}, (
            f"{lid} ({res['Type']}) is deleted when a change replaces it"
        )
        if res["Type"] == "AWS::Logs::LogGroup":
            # A kept group with a fixed name would block creating the stack again; its events expire.
            assert "RetentionInDays" in _props(res), f"{lid} keeps its logs forever"
            name = _sub_string(_props(res).get("LogGroupName")) or ""
            assert not name or name.startswith("/aws/lambda/${"), f"{lid} has a fixed name: {name}"


def test_every_table_is_protected_from_deletion_in_prod(raw: dict[str, Any]) -> None:
    tables = _resources(raw, "AWS::DynamoDB::Table")
    assert set(tables) >= {"ContentTable", "MembersTable", "DeliveriesTable"}
    template = LocalTemplate(path=TEMPLATE_PATH, body=raw)
    for stage, protected in (("prod", True), ("dev", False)):
        resolver = Resolver(template, template.parameter_values({"Stage": stage}))
        for lid, table in tables.items():
            assert resolver.resolve(_props(table).get("DeletionProtectionEnabled")) is protected, (lid, stage)


def test_every_log_group_has_retention(expanded: dict[str, Any]) -> None:
    groups = _resources(expanded, "AWS::Logs::LogGroup")
    assert groups
    for lid, group in groups.items():
        assert _ref_target(_props(group).get("RetentionInDays")) == "LogRetentionDays", lid


def test_site_distribution_serves_tls_only(raw: dict[str, Any]) -> None:
    config = _props(raw["Resources"]["SiteDistribution"])["DistributionConfig"]
    condition, own_domain, default = config["ViewerCertificate"]["Fn::If"]
    assert condition == "HasSiteDomain"
    assert own_domain["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert own_domain["SslSupportMethod"] == "sni-only"
    assert _ref_target(own_domain["AcmCertificateArn"]) == "SiteCertificateArn"
    # CloudFront's default certificate always has the TLSv1 policy; anything more would be ignored.
    assert default == {"CloudFrontDefaultCertificate": True}
    behaviors = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
    assert all(b["ViewerProtocolPolicy"] in ("redirect-to-https", "https-only") for b in behaviors)


def test_uploads_bucket_versioning_and_lifecycle(raw: dict[str, Any]) -> None:
    props = _props(raw["Resources"]["UploadsBucket"])
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == 90 for r in rules)
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 7 for r in rules)


def test_uploads_notify_ingest_only_for_editor_prefixes(raw: dict[str, Any]) -> None:
    bucket = raw["Resources"]["UploadsBucket"]
    notifications = _props(bucket)["NotificationConfiguration"]
    assert set(notifications) == {"QueueConfigurations"}, "only the ingest queue is notified"
    seen = set()
    for conf in notifications["QueueConfigurations"]:
        assert _ref_target(conf["Queue"]) == "IngestQueue"
        rules = conf["Filter"]["S3Key"]["Rules"]
        prefixes = [r["Value"] for r in rules if r["Name"].lower() == "prefix"]
        assert len(prefixes) == 1 and prefixes[0] in UPLOAD_PREFIXES, conf
        seen.add((conf["Event"], prefixes[0]))
    events = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
    assert seen == {(event, prefix) for event in events for prefix in UPLOAD_PREFIXES}
    # S3 checks that it may send to the queue when the notifications are set.
    assert "IngestQueuePolicy" in _listify(bucket["DependsOn"])


def test_queue_policy_admits_only_the_uploads_bucket(raw: dict[str, Any]) -> None:
    policy = _props(raw["Resources"]["IngestQueuePolicy"])
    assert [_ref_target(q) for q in policy["Queues"]] == ["IngestQueue"]
    statements = _listify(policy["PolicyDocument"]["Statement"])
    allows = [st for st in statements if st["Effect"] == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert _listify(allow["Action"]) == ["sqs:SendMessage"]
    bucket_name = _sub_string(_props(raw["Resources"]["UploadsBucket"])["BucketName"])
    source_arn = _sub_string(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert source_arn == f"arn:${{AWS::Partition}}:s3:::{bucket_name}"
    assert _ref_target(allow["Condition"]["StringEquals"]["aws:SourceAccount"]) == "AWS::AccountId"
    assert _denies_insecure_transport(statements, "sqs:*")


# ----------------------------------------------------------------------------- queues and events


def test_queues_are_encrypted_and_work_queues_have_a_dead_letter_queue(raw: dict[str, Any]) -> None:
    queues = _resources(raw, "AWS::SQS::Queue")
    dead_letter = {
        _ref_target(_props(q)["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in _props(q)
    }
    # Stream event sources park what they give up on in an on-failure destination.
    for fn in _resources(raw, "AWS::Serverless::Function").values():
        for event in (_props(fn).get("Events") or {}).values():
            on_failure = (event.get("Properties", {}).get("DestinationConfig") or {}).get("OnFailure") or {}
            if on_failure:
                dead_letter.add(_ref_target(on_failure["Destination"]))
    assert "IngestDeadLetterQueue" in dead_letter
    for lid, queue in queues.items():
        props = _props(queue)
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, lid
        if lid in dead_letter:
            assert int(props["MessageRetentionPeriod"]) == 14 * 24 * 3600, lid
            continue
        redrive = props["RedrivePolicy"]
        assert _ref_target(redrive["deadLetterTargetArn"]) in queues, lid
        assert 1 <= int(redrive["maxReceiveCount"]) <= 10, lid


def test_every_queue_denies_plain_http_in_its_one_policy(raw: dict[str, Any]) -> None:
    queues = _resources(raw, "AWS::SQS::Queue")
    assert queues
    policies = _resources(raw, "AWS::SQS::QueuePolicy")
    for lid in queues:
        mine = [p for p in policies.values() if lid in {_ref_target(q) for q in _props(p)["Queues"]}]
        # A queue has one policy: a second QueuePolicy naming it would replace the first.
        assert len(mine) == 1, f"{lid} is named by {len(mine)} queue policies"
        statements = _listify(_props(mine[0])["PolicyDocument"]["Statement"])
        denies = _denies_insecure_transport(statements, "sqs:*")
        assert any(_ref_target(r) == lid for st in denies for r in _listify(st["Resource"])), (
            f"{lid} does not deny plain-HTTP access"
        )


def test_every_queue_sets_its_message_retention(raw: dict[str, Any]) -> None:
    for lid, queue in _resources(raw, "AWS::SQS::Queue").items():
        retention = int(_props(queue)["MessageRetentionPeriod"])
        assert 4 * 24 * 3600 <= retention <= 14 * 24 * 3600, lid


def test_sqs_events_report_batch_failures_and_outlast_the_function(
    raw: dict[str, Any], expanded: dict[str, Any]
) -> None:
    queues = _resources(raw, "AWS::SQS::Queue")
    functions = _resources(raw, "AWS::Serverless::Function")
    sqs_events = 0
    for lid, fn in functions.items():
        for name, event in _props(fn).get("Events", {}).items():
            if event["Type"] != "SQS":
                continue
            sqs_events += 1
            props = event["Properties"]
            assert "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []), f"{lid}.{name}"
            queue = queues[_ref_target(props["Queue"])]
            visibility = int(_props(queue).get("VisibilityTimeout", 30))
            assert visibility >= 6 * _function_timeout(raw, fn), f"{lid}.{name}: visibility {visibility}s"
    assert sqs_events >= 1

    # The same holds for every mapping CloudFormation will create, SAM-generated or not.
    mappings = _resources(expanded, "AWS::Lambda::EventSourceMapping")
    sqs_mappings = [m for m in mappings.values() if _ref_target(_props(m)["EventSourceArn"]) in queues]
    assert len(sqs_mappings) == sqs_events
    for mapping in sqs_mappings:
        assert "ReportBatchItemFailures" in _props(mapping)["FunctionResponseTypes"]
    ingest = next(m for m in sqs_mappings if _ref_target(_props(m)["FunctionName"]) == "IngestFunction")
    assert _props(ingest)["BatchSize"] == 10
    assert _props(ingest)["ScalingConfig"]["MaximumConcurrency"] == 5


# ----------------------------------------------------------------------------- functions, logs, tables


def test_every_function_has_a_log_group_with_retention(expanded: dict[str, Any]) -> None:
    groups = _resources(expanded, "AWS::Logs::LogGroup").values()
    names = {_sub_string(_props(g).get("LogGroupName")): _props(g) for g in groups}
    functions = _resources(expanded, "AWS::Lambda::Function")
    assert functions
    for lid in functions:
        group = names.get(f"/aws/lambda/${{{lid}}}")
        assert group is not None, f"{lid} has no log group"
        assert "RetentionInDays" in group, lid


def test_functions_log_json(expanded: dict[str, Any]) -> None:
    for lid, fn in _resources(expanded, "AWS::Lambda::Function").items():
        assert _props(fn)["LoggingConfig"]["LogFormat"] == "JSON", lid


def test_every_table_has_point_in_time_recovery(raw: dict[str, Any]) -> None:
    tables = _resources(raw, "AWS::DynamoDB::Table")
    assert tables
    for lid, table in tables.items():
        props = _props(table)
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, lid
        assert props["SSESpecification"]["SSEEnabled"] is True, lid
        assert props["BillingMode"] == "PAY_PER_REQUEST", lid


def test_content_table_shape(raw: dict[str, Any]) -> None:
    props = _props(raw["Resources"]["ContentTable"])
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == ["gsi1pk", "gsi1sk"]
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["DeletionProtectionEnabled"] == {"Fn::If": ["IsProd", True, False]}


# ----------------------------------------------------------------------------- IAM


BROAD_ACTION = re.compile(r"^(\*|[a-z0-9-]+:\*)$", re.IGNORECASE)
#: Actions IAM knows no resource of (the Service Authorization Reference lists none used here): their
#: statements must name "*", and are then held to the stack's region.
NO_RESOURCE_ACTIONS = {"translate:TranslateText", "comprehend:DetectDominantLanguage"}


def test_no_identity_policy_allows_wildcard_actions_or_resources(expanded: dict[str, Any]) -> None:
    statements = list(_statements(expanded))
    assert statements
    for lid, st in statements:
        if st["Effect"] != "Allow":
            continue
        assert "NotAction" not in st and "NotResource" not in st, lid
        for action in _listify(st["Action"]):
            assert not BROAD_ACTION.match(action), f"{lid} allows {action}"
        if set(_listify(st["Action"])) <= NO_RESOURCE_ACTIONS:
            assert st["Condition"]["StringEquals"]["aws:RequestedRegion"] == {"Ref": "AWS::Region"}, lid
            continue
        for resource in _listify(st["Resource"]):
            assert resource != "*", f"{lid} allows {st['Action']} on every resource"


def test_roles_carry_no_tracing_or_admin_managed_policies(expanded: dict[str, Any]) -> None:
    for lid, role in _resources(expanded, "AWS::IAM::Role").items():
        for arn in _props(role).get("ManagedPolicyArns", []):
            assert isinstance(arn, str), lid
            assert not arn.endswith((":policy/AdministratorAccess", ":policy/PowerUserAccess")), lid
            assert "FullAccess" not in arn, f"{lid}: {arn}"
            # X-Ray write access comes only with the Tracing switch (SAM attaches it for `!If` tracing).
            if "Xray" in arn:
                assert arn.endswith(":policy/AWSXrayWriteOnlyAccess"), f"{lid}: {arn}"


def test_tracing_is_a_switch_that_is_off_by_default(raw: dict[str, Any]) -> None:
    assert raw["Parameters"]["Tracing"]["Default"] == "Off"
    globals_ = raw["Globals"]["Function"]
    assert globals_["Tracing"] == {"Fn::If": ["TracingOn", "Active", {"Ref": "AWS::NoValue"}]}
    variables = globals_["Environment"]["Variables"]
    assert variables["HERALD_TRACING"] == {"Fn::If": ["TracingOn", "active", "off"]}


def test_ingest_reads_uploads_and_writes_only_rejected_copies(expanded: dict[str, Any]) -> None:
    def is_s3(st: dict[str, Any]) -> bool:
        return any(a.startswith("s3:") for a in _listify(st["Action"]))

    def is_write(st: dict[str, Any]) -> bool:
        return any(a in ("s3:PutObject", "s3:DeleteObject") for a in _listify(st["Action"]))

    def key_patterns(statements: list[dict[str, Any]]) -> set[str]:
        # arn:${AWS::Partition}:s3:::${UploadsBucket}/posts/* -> /posts/*
        return {
            (_sub_string(r) or "").rsplit("}", 1)[-1] for st in statements for r in _listify(st["Resource"])
        }

    s3 = [st for lid, st in _statements(expanded) if lid == "IngestFunctionRole" and is_s3(st)]
    write_prefixes = key_patterns([st for st in s3 if is_write(st)])
    read_prefixes = key_patterns([st for st in s3 if not is_write(st)])
    assert write_prefixes == {"/rejected/*"}
    assert read_prefixes == {"/posts/*", "/exports/*", "/communities/*"}
    # What Herald writes never notifies ingest.
    assert not {p.strip("/*") + "/" for p in write_prefixes} & UPLOAD_PREFIXES


# ----------------------------------------------------------------------------- alarms


def test_alarms_notify_the_topic(raw: dict[str, Any]) -> None:
    alarms = _resources(raw, "AWS::CloudWatch::Alarm")
    assert set(alarms) >= {"IngestDeadLetterAlarm", "IngestErrorsAlarm", "IngestQueueAgeAlarm"}
    for lid, alarm in alarms.items():
        props = _props(alarm)
        assert [_ref_target(a) for a in props["AlarmActions"]] == ["AlarmTopic"], lid
        assert props["TreatMissingData"] == "notBreaching", lid
    dlq = _props(alarms["IngestDeadLetterAlarm"])
    assert _ref_target(dlq["Dimensions"][0]["Value"]) == "IngestDeadLetterQueue"
    assert dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert raw["Resources"]["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"


# ----------------------------------------------------------------------------- the HTTP API and members


API_ROUTES = {
    ("/communities/{id}", "GET"),
    ("/communities/{id}/posts", "GET"),
    ("/communities/{id}/posts/{post_id}", "GET"),
    ("/communities/{id}/members", "POST"),
    ("/communities/{id}/members/{member_id}", "PATCH"),
    ("/communities/{id}/members/{member_id}", "DELETE"),
    ("/communities/{id}/join", "GET"),
    ("/openapi.json", "GET"),
    ("/docs", "GET"),
}


def test_api_is_throttled_logged_and_serves_png(raw: dict[str, Any]) -> None:
    api = _props(raw["Resources"]["HeraldApi"])
    assert _ref_target(api["StageName"]) == "Stage"
    assert api["EndpointConfiguration"]["Type"] == "REGIONAL"
    assert api["TracingEnabled"] is False
    assert "image~1png" in api["BinaryMediaTypes"]
    [settings] = api["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert 0 < settings["ThrottlingRateLimit"] <= settings["ThrottlingBurstLimit"]
    assert settings["MetricsEnabled"] is True
    access = api["AccessLogSetting"]
    assert _ref_target(access["DestinationArn"]) == "HeraldApiAccessLogGroup"
    assert "$context.requestId" in access["Format"] and "$context.status" in access["Format"]
    group = _props(raw["Resources"]["HeraldApiAccessLogGroup"])
    assert _ref_target(group["RetentionInDays"]) == "LogRetentionDays"


def test_api_function_routes_and_environment(raw: dict[str, Any]) -> None:
    fn = _props(raw["Resources"]["ApiFunction"])
    routes = set()
    for event in fn["Events"].values():
        assert event["Type"] == "Api"
        assert _ref_target(event["Properties"]["RestApiId"]) == "HeraldApi"
        routes.add((event["Properties"]["Path"], event["Properties"]["Method"]))
    assert routes == API_ROUTES
    env = fn["Environment"]["Variables"]
    assert _ref_target(env["MEMBERS_TABLE"]) == "MembersTable"
    assert _ref_target(env["MEMBER_TOKEN_SECRET_ARN"]) == "MemberTokenSecret"
    assert env["PUBLIC_SITE_URL"] == SITE_URL
    assert _ref_target(env["MEMBER_COUNTER_SHARDS"]) == "MemberCounterShards"
    params = raw["Parameters"]
    assert str(params["MemberCounterShards"]["Default"]) == "32"
    assert (
        params["FcmPlatformApplicationArn"]["Default"]
        == params["ApnsPlatformApplicationArn"]["Default"]
        == ""
    )
    assert set(raw["Outputs"]) >= {"ApiUrl", "MembersTableName", "ApiFunctionName", "MemberTokenSecretArn"}


def test_members_table_shape_and_secret(raw: dict[str, Any]) -> None:
    props = _props(raw["Resources"]["MembersTable"])
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert [i["IndexName"] for i in props["GlobalSecondaryIndexes"]] == ["gsi1"]
    secret = _props(raw["Resources"]["MemberTokenSecret"])
    assert int(secret["GenerateSecretString"]["PasswordLength"]) >= 32


def test_api_reads_content_and_writes_only_members(expanded: dict[str, Any]) -> None:
    statements = [st for lid, st in _statements(expanded) if lid == "ApiFunctionRole"]
    by_sid = {st.get("Sid"): st for st in statements}
    content = by_sid["ContentTableRead"]
    assert set(_listify(content["Action"])) == {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"}
    writes = [
        st
        for st in statements
        if any(
            a.startswith("dynamodb:")
            and a not in ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem")
            for a in _listify(st["Action"])
        )
    ]
    for st in writes:
        assert all("MembersTable" in str(r) for r in _listify(st["Resource"])), st
    assert _listify(by_sid["MemberTokenSecret"]["Action"]) == ["secretsmanager:GetSecretValue"]


# ----------------------------------------------------------------------------- the public site


def test_site_bucket_is_read_only_by_its_distribution(raw: dict[str, Any]) -> None:
    bucket = _props(raw["Resources"]["SiteBucket"])
    assert "AccessControl" not in bucket and "WebsiteConfiguration" not in bucket  # no public ACL, no website
    policies = _resources(raw, "AWS::S3::BucketPolicy").values()
    [policy] = [p for p in policies if _ref_target(_props(p)["Bucket"]) == "SiteBucket"]
    allows = [st for st in _props(policy)["PolicyDocument"]["Statement"] if st["Effect"] == "Allow"]
    assert len(allows) == 1
    [allow] = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert _listify(allow["Action"]) == ["s3:GetObject"]
    source = _sub_string(allow["Condition"]["StringEquals"]["AWS:SourceArn"]) or ""
    assert source.endswith(":distribution/${SiteDistribution}")


def test_site_distribution_uses_origin_access_control_and_caching_policy(raw: dict[str, Any]) -> None:
    oac = _props(raw["Resources"]["SiteOriginAccessControl"])["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    config = _props(raw["Resources"]["SiteDistribution"])["DistributionConfig"]
    [origin] = config["Origins"]
    assert _ref_target(origin["DomainName"]) == "SiteBucket"
    assert _ref_target(origin["OriginAccessControlId"]) == "SiteOriginAccessControl"
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # OAC, not the legacy OAI
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["Compress"] is True
    assert behavior["CachePolicyId"] == "658327ea-f89d-4fab-a63d-7e88639e58f6"  # Managed-CachingOptimized
    assert _ref_target(behavior["ResponseHeadersPolicyId"]) == "SiteResponseHeadersPolicy"
    [association] = behavior["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    assert _ref_target(association["FunctionARN"]) == "SiteIndexFunction"
    assert (config["HttpVersion"], config["PriceClass"]) == ("http2and3", "PriceClass_100")
    assert config["Aliases"]["Fn::If"][0] == "HasSiteDomain"
    headers = _props(raw["Resources"]["SiteResponseHeadersPolicy"])["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert "frame-ancestors 'none'" in security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert {"ContentTypeOptions", "ReferrerPolicy"} <= set(security)
    code = _props(raw["Resources"]["SiteIndexFunction"])["FunctionCode"]
    assert "index.html" in code


WRITE_ACTIONS = ("s3:Put", "s3:Delete", "dynamodb:Put", "dynamodb:Update", "dynamodb:Delete")


def test_publisher_reads_the_stream_and_writes_only_the_site_bucket(
    raw: dict[str, Any], expanded: dict[str, Any]
) -> None:
    fn = _props(raw["Resources"]["PublisherFunction"])
    env = fn["Environment"]["Variables"]
    assert {"CONTENT_TABLE", "MEMBERS_TABLE", "SITE_BUCKET", "PUBLIC_SITE_URL", "API_URL"} <= set(env)
    assert env["PUBLIC_SITE_URL"] == SITE_URL
    event = fn["Events"]["ContentStream"]
    props = event["Properties"]
    assert event["Type"] == "DynamoDB" and _ref_target(props["Stream"]) == "ContentTable"
    assert props["StartingPosition"] == "LATEST" and props["BisectBatchOnFunctionError"] is True
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert _ref_target(props["DestinationConfig"]["OnFailure"]["Destination"]) == "PublisherDeadLetterQueue"
    patterns = [f["Pattern"] for f in props["FilterCriteria"]["Filters"]]
    assert any("POST#" in p for p in patterns) and any("PROFILE" in p for p in patterns)

    writes = [
        (lid, st)
        for lid, st in _statements(expanded)
        if lid.startswith("PublisherFunction")
        and st["Effect"] == "Allow"
        and any(a.startswith(WRITE_ACTIONS) for a in _listify(st["Action"]))
    ]
    assert writes
    for _, st in writes:
        if st.get("Sid") == "ReleaseMarker":  # one attribute of the content table: checked elsewhere
            assert _listify(st["Action"]) == ["dynamodb:UpdateItem"]
            assert "dynamodb:Attributes" in st["Condition"]["ForAllValues:StringEquals"]
            continue
        if st.get("Sid") == "FanoutMarker":  # a post's pushed languages, its own item's attributes
            assert _listify(st["Action"]) == ["dynamodb:PutItem", "dynamodb:UpdateItem"]
            attributes = st["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
            assert set(attributes) == {
                "pk",
                "sk",
                "type",
                "first",
                "pushed",
                "waves",
                "started_at",
                "expires_at",
            }
            continue
        for action in _listify(st["Action"]):
            assert not action.startswith("dynamodb:"), f"the publisher writes no table ({action})"
        for resource in _listify(st["Resource"]):
            assert (_sub_string(resource) or "").startswith("${SiteBucket.Arn}"), resource


def test_translator_reads_post_records_and_writes_only_variants(
    raw: dict[str, Any], expanded: dict[str, Any]
) -> None:
    fn = _props(raw["Resources"]["TranslatorFunction"])
    assert set(fn["Environment"]["Variables"]) == {"CONTENT_TABLE"}
    [event] = fn["Events"].values()
    props = event["Properties"]
    assert event["Type"] == "DynamoDB" and _ref_target(props["Stream"]) == "ContentTable"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True and props["MaximumRetryAttempts"] >= 1
    assert _ref_target(props["DestinationConfig"]["OnFailure"]["Destination"]) == "TranslatorDeadLetterQueue"
    [pattern] = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert pattern["eventName"] == ["INSERT", "MODIFY"]
    assert pattern["dynamodb"]["Keys"]["sk"] == {"S": [{"prefix": "POST#"}]}

    statements = [st for lid, st in _statements(expanded) if lid.startswith("TranslatorFunction")]
    by_sid = {st.get("Sid"): st for st in statements if st["Effect"] == "Allow"}
    assert _listify(by_sid["Translate"]["Action"])[0] == "translate:TranslateText"
    for st in by_sid.values():
        for action in _listify(st["Action"]):
            if action.startswith(("dynamodb:Put", "dynamodb:Update", "dynamodb:Delete", "dynamodb:Batch")):
                assert action in ("dynamodb:PutItem", "dynamodb:UpdateItem"), action
                assert st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["C#*"]
            assert not action.startswith(("s3:", "sns:")), action
    update = by_sid["PostVariantsMap"]
    assert update["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"] == [
        "pk",
        "sk",
        "variants",
        "variants_rev",
    ]

    alarms = _resources(raw, "AWS::CloudWatch::Alarm")
    iterator = _props(alarms["TranslatorIteratorAgeAlarm"])
    assert iterator["MetricName"] == "IteratorAge"
    assert _ref_target(iterator["Dimensions"][0]["Value"]) == "TranslatorFunction"
    dlq = _props(alarms["TranslatorDeadLetterAlarm"])
    assert _ref_target(dlq["Dimensions"][0]["Value"]) == "TranslatorDeadLetterQueue"
    assert {"TranslatorFunctionName", "TranslatorDeadLetterQueueUrl"} <= set(raw["Outputs"])


def test_publisher_alarms_and_site_outputs(raw: dict[str, Any]) -> None:
    alarms = _resources(raw, "AWS::CloudWatch::Alarm")
    iterator = _props(alarms["PublisherIteratorAgeAlarm"])
    assert iterator["MetricName"] == "IteratorAge"
    assert _ref_target(iterator["Dimensions"][0]["Value"]) == "PublisherFunction"
    dlq = _props(alarms["PublisherDeadLetterAlarm"])
    assert _ref_target(dlq["Dimensions"][0]["Value"]) == "PublisherDeadLetterQueue"
    outputs = raw["Outputs"]
    assert {"SiteBucketName", "SiteUrl", "SiteDistributionId", "PublisherDeadLetterQueueUrl"} <= set(outputs)
    assert _sub_string(outputs["SiteUrl"]["Value"]) == "https://${SiteDistribution.DomainName}"


# ----------------------------------------------------------------------------- the push fan-out


def test_push_fanout_resources_and_outputs(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    assert set(resources) >= {
        "DeliveriesTable",
        "PlannerQueue",
        "PlannerDeadLetterQueue",
        "PushJobQueue",
        "PushJobDeadLetterQueue",
        "FanoutPlannerFunction",
        "PushSenderFunction",
        "PlannerDeadLetterAlarm",
        "PushJobDeadLetterAlarm",
        "MobilePushAuthFailuresAlarm",
        "PushServicesFailingAlarm",
    }
    assert set(raw["Outputs"]) >= {
        "PushJobQueueUrl",
        "PushJobDeadLetterQueueUrl",
        "PlannerQueueUrl",
        "PlannerDeadLetterQueueUrl",
        "DeliveriesTableName",
        "VapidKeyParameterName",
    }
    table = _props(resources["DeliveriesTable"])
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    pairs = (("PlannerQueue", "PlannerDeadLetterQueue"), ("PushJobQueue", "PushJobDeadLetterQueue"))
    for queue, dlq in pairs:
        assert _ref_target(_props(resources[queue])["RedrivePolicy"]["deadLetterTargetArn"]) == dlq
    params = raw["Parameters"]
    assert params["VapidKeyParameterName"]["Default"] == ""
    assert params["VapidSubject"]["Default"] == "mailto:ops@herald.example"


def test_fan_outs_start_from_the_publisher_after_the_site_is_written(
    expanded: dict[str, Any], raw: dict[str, Any]
) -> None:
    resources = raw["Resources"]
    planner = _props(resources["FanoutPlannerFunction"])
    # No stream of its own: the publisher's release job (after the page is written) starts a fan-out.
    assert set(planner["Events"]) == {"PlannerJobs"}
    assert _ref_target(planner["Events"]["PlannerJobs"]["Properties"]["Queue"]) == "PlannerQueue"
    publisher = _props(resources["PublisherFunction"])
    env = publisher["Environment"]["Variables"]
    assert _ref_target(env["PLANNER_QUEUE_URL"]) == "PlannerQueue"
    assert _ref_target(env["SCHEDULE_QUEUE_URL"]) == "SiteScheduleQueue"
    wakeups = publisher["Events"]["ScheduledPosts"]["Properties"]
    assert _ref_target(wakeups["Queue"]) == "SiteScheduleQueue"
    assert "ReportBatchItemFailures" in wakeups["FunctionResponseTypes"]
    queue = _props(resources["SiteScheduleQueue"])
    assert _ref_target(queue["RedrivePolicy"]["deadLetterTargetArn"]) == "PublisherDeadLetterQueue"
    statements = {st.get("Sid"): st for lid, st in _statements(expanded) if lid == "PublisherFunctionRole"}
    assert _listify(statements["ScheduleAndRelease"]["Action"]) == ["sqs:SendMessage"]
    marker = statements["ReleaseMarker"]
    assert _listify(marker["Action"]) == ["dynamodb:UpdateItem"]
    attributes = marker["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert set(attributes) == {"pk", "sk", "publish_at", "released_at"}
    planner = {st.get("Sid"): st for lid, st in _statements(expanded) if lid == "FanoutPlannerFunctionRole"}
    assert len(_listify(planner["QueueJobs"]["Resource"])) == 2  # its own queue and the push jobs


def test_the_sender_reads_the_vapid_key_only(expanded: dict[str, Any], raw: dict[str, Any]) -> None:
    env = _props(raw["Resources"]["PushSenderFunction"])["Environment"]["Variables"]
    assert "VAPID_KEY_PARAMETER" in env and _ref_target(env["VAPID_SUBJECT"]) == "VapidSubject"
    statements = {st.get("Sid"): st for lid, st in _statements(expanded) if lid == "PushSenderFunctionRole"}
    assert _listify(statements["VapidKey"]["Action"]) == ["ssm:GetParameter"]
    assert "parameter${Name}" in str(statements["VapidKey"]["Resource"])
    decrypt = statements["VapidKeyDecrypt"]
    assert _listify(decrypt["Action"]) == ["kms:Decrypt"]
    assert "kms:ViaService" in decrypt["Condition"]["StringEquals"]
    assert _listify(statements["MobilePush"]["Action"]) == ["sns:Publish"]
    # The API reads the delivery statistics, and only reads them.
    api = {st.get("Sid"): st for lid, st in _statements(expanded) if lid == "ApiFunctionRole"}
    assert _listify(api["DeliveryStatsRead"]["Action"]) == ["dynamodb:GetItem"]


def test_the_sender_has_time_to_push_before_its_reserve(raw: dict[str, Any]) -> None:
    """The sender stops claiming members when less than its reserve is left (a continuation job takes
    the rest): the timeout must leave a few rounds of the slowest pushes before that, or every
    invocation would send its jobs on without pushing anyone."""
    import importlib.util

    from herald.fanout.channels.sns_mobile import PUBLISH_BOUND_S
    from herald.fanout.channels.webpush import DEFAULT_DEADLINE_S

    spec = importlib.util.spec_from_file_location("push_sender_app", ROOT / "functions/push_sender/app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    slowest = max(DEFAULT_DEADLINE_S, PUBLISH_BOUND_S)
    reserve = slowest + app.RESERVE_MARGIN_S
    function = _props(raw["Resources"]["PushSenderFunction"])
    assert function["Timeout"] - reserve >= 4 * slowest  # 120 s - 25 s: six rounds of 15 s
    queue = _props(raw["Resources"]["PushJobQueue"])
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]


def _cloudwatch_expression(expression: str) -> Any:
    """A CloudWatch metric math expression of the shape the push alarm uses (``IF(cond, 1, 0)``,
    ``FILL(id, 0)``, ``AND``, ``OR``, comparisons, ``+``, ``*``) as a Python function of the ids."""
    match = re.fullmatch(r"IF\((.*), 1, 0\)", expression)
    assert match, expression
    body = re.sub(r"FILL\((\w+), 0\)", r"v.get('\1', 0)", match.group(1))
    body = body.replace(" AND ", " and ").replace(" OR ", " or ")
    assert re.fullmatch(r"[\w\s().'*+>=,\[\]]+", body) and "__" not in body, body
    code = compile(f"1 if ({body}) else 0", "<alarm>", "eval")
    return lambda v: eval(code, {"__builtins__": {}}, {"v": v})


def test_push_alarms(raw: dict[str, Any]) -> None:
    from herald.fanout.delivery import WEB_PUSH_SERVICES, BroadFailureRule, ServiceTally

    alarms = raw["Resources"]
    mobile = _props(alarms["MobilePushAuthFailuresAlarm"])
    assert (mobile["Namespace"], mobile["MetricName"]) == ("Herald", "MobilePushAuthFailures")
    # No alarm reads what one endpoint answers: the old ones on PushAuthFailures and on the share of
    # all failed pushes tripped on a stranger's own endpoint answering 401 or 400.
    metric_alarms = [r for r in alarms.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    for alarm in metric_alarms:
        props = _props(alarm)
        read = {props.get("MetricName")} | {
            m["MetricStat"]["Metric"]["MetricName"] for m in props.get("Metrics", []) if "MetricStat" in m
        }
        assert not read & {"PushAuthFailures", "PushesFailed"}, props["AlarmDescription"]
    broad = _props(alarms["PushServicesFailingAlarm"])
    stats = {m["Id"]: m["MetricStat"] for m in broad["Metrics"] if "MetricStat" in m}
    watched = {
        (stat["Metric"]["MetricName"], dims["push_service"])
        for stat in stats.values()
        for dims in [{d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}]
    }
    names = ("PushServiceAttempts", "PushServiceFailures")
    assert watched == {(n, s) for n in names for s in WEB_PUSH_SERVICES}  # never "other"
    assert all(stat["Stat"] == "Sum" and stat["Period"] == 300 for stat in stats.values())
    [watch] = [m for m in broad["Metrics"] if m.get("ReturnData")]
    alarm = _cloudwatch_expression(watch["Expression"])
    assert (broad["Threshold"], broad["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")

    def fires(tally: ServiceTally) -> bool:
        values: dict[str, int] = {}
        for service in WEB_PUSH_SERVICES:
            values["a" + service] = tally.attempts.get(service, 0)
            values["f" + service] = tally.failures.get(service, 0)
        assert set(values) == set(stats)
        return bool(alarm(values))

    rule = BroadFailureRule()
    # The alarm computes the rule the sender's metrics are tested against, on every shape of five minutes.
    samples: list[dict[str, tuple[int, int]]] = [
        {"other": (10_000, 10_000)},  # a stranger's endpoints answering 401: never
        {"fcm": (1000, 10), "other": (5000, 5000)},
        {"fcm": (30, 30)},  # one service, few attempts
        {"fcm": (30, 30), "mozilla": (25, 13)},  # two services failing half
        {"fcm": (30, 30), "mozilla": (25, 12)},
        {"fcm": (19, 19), "mozilla": (19, 19), "apple": (19, 19)},
        {"fcm": (600, 540)},  # one service, 90% of 600
        {"fcm": (600, 539)},
        {"apple": (499, 499)},
        {"windows": (20, 10), "apple": (20, 10), "fcm": (0, 0)},
    ]
    for sample in samples:
        assert fires(_tally(sample)) == rule.fires(_tally(sample)), sample
    expected = [False, False, False, True, False, False, True, False, False, True]
    assert [fires(_tally(s)) for s in samples] == expected
    for dlq_alarm, queue in (
        ("PlannerDeadLetterAlarm", "PlannerDeadLetterQueue"),
        ("PushJobDeadLetterAlarm", "PushJobDeadLetterQueue"),
    ):
        assert _ref_target(_props(alarms[dlq_alarm])["Dimensions"][0]["Value"]) == queue


def _tally(sample: dict[str, tuple[int, int]]) -> Any:
    from herald.fanout.delivery import Outcome, ServiceTally

    tally = ServiceTally()
    for service, (attempts, failures) in sample.items():
        for i in range(attempts):
            tally.add(service, Outcome.AUTH_FAILURE if i < failures else Outcome.SENT)
    return tally


def test_every_function_is_watched_for_errors_and_throttles(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    functions = {lid for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}

    def watched(alarm: str) -> set[str]:
        queries = resources[alarm]["Properties"]["Metrics"]
        return {
            q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"] for q in queries if "MetricStat" in q
        }

    assert watched("FunctionThrottlesAlarm") == functions
    assert watched("FunctionErrorsAlarm") | {"IngestFunction"} == functions
    assert resources["IngestErrorsAlarm"]["Properties"]["Dimensions"][0]["Value"] == {"Ref": "IngestFunction"}


def test_one_dashboard_shows_every_function_and_queue(raw: dict[str, Any]) -> None:
    resources = raw["Resources"]
    [dashboard] = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    functions = [lid for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    queues = [lid for lid, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    assert all(f"${{{f}}}" in body for f in functions)
    assert all(f"${{{q}.QueueName}}" in body for q in queues)
    assert "5XXError" in body and "PushesSent" in body and "MembersJoined" in body


def test_samconfig_stages_set_only_parameters_the_template_has(raw: dict[str, Any]) -> None:
    import tomllib

    config = tomllib.loads((TEMPLATE_PATH.parent / "samconfig.toml").read_text(encoding="utf-8"))
    for stage in ("dev", "prod"):
        overrides = config[stage]["deploy"]["parameters"]["parameter_overrides"]
        names = {item.split("=", 1)[0] for item in overrides}
        assert names <= set(raw["Parameters"]), names - set(raw["Parameters"])
        wanted = {
            "LogLevel",
            "LogRetentionDays",
            "AlarmEmail",
            "VapidKeyParameterName",
            "PublicSiteUrl",
            "SiteDomainName",
        }
        assert wanted <= names, wanted - names
        assert f"Stage={stage}" in overrides


# ----------------------------------------------------------------------------- the site's URL


def test_the_site_url_defaults_to_the_distributions_domain(
    raw: dict[str, Any], expanded: dict[str, Any]
) -> None:
    """No placeholder on a first deploy: without a PublicSiteUrl the API, the planner and the
    publisher name https://<distribution>.cloudfront.net, and CORS admits that origin."""
    param = raw["Parameters"]["PublicSiteUrl"]
    assert param["Default"] == ""
    assert re.fullmatch(param["AllowedPattern"], "") and re.fullmatch(
        param["AllowedPattern"], "https://a.org"
    )
    assert not re.fullmatch(param["AllowedPattern"], "https://a.org/")
    assert raw["Conditions"]["HasPublicSiteUrl"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PublicSiteUrl"}, ""]}]
    }
    resources = raw["Resources"]
    users = {
        lid
        for lid, body in resources.items()
        if "PUBLIC_SITE_URL" in (_props(body).get("Environment") or {}).get("Variables", {})
    }
    assert users == {"ApiFunction", "FanoutPlannerFunction", "PublisherFunction"}
    for lid in users:
        assert _props(resources[lid])["Environment"]["Variables"]["PUBLIC_SITE_URL"] == SITE_URL, lid
    cors = _props(resources["HeraldApi"])["Cors"]["AllowOrigin"]
    assert cors == {
        "Fn::If": [
            "HasPublicSiteUrl",
            {"Fn::Sub": "'${PublicSiteUrl}'"},
            {"Fn::Sub": "'https://${SiteDistribution.DomainName}'"},
        ]
    }
    # SAM carries the choice into the preflight's answer (the OPTIONS method it adds).
    body = json.dumps(_props(expanded["Resources"]["HeraldApi"])["Body"])
    assert "HasPublicSiteUrl" in body and "${SiteDistribution.DomainName}" in body
    # The distribution does not depend on what names it (no cycle): nothing it refers to uses the URL.
    distribution = json.dumps(resources["SiteDistribution"])
    assert "PublicSiteUrl" not in distribution and "HeraldApi" not in distribution
