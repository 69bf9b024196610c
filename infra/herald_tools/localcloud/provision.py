"""Create the resources a template declares, with boto3, against moto (server or in-process).

Everything comes from the template: the resources, their properties, the functions
and their event sources.  Resource types the local cloud has no use for (IAM roles,
Lambda permissions, layers ...) are not created but still get a plausible physical id
so that expressions referring to them resolve.

Usage inside moto's in-process mock::

    with moto.mock_aws():
        resources = provision("template.yaml", boto3.Session(region_name="us-east-1"))
        resources.uploads_bucket, resources.ingest_queue_url, resources.content_table
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from .runtime import BuiltRuntime
from .template import (
    ACCOUNT_ID,
    PARTITION,
    REGION,
    STACK_NAME,
    Resolver,
    Template,
    TemplateError,
    Unresolved,
    references,
)

log = logging.getLogger(__name__)

ClientFactory = Callable[[str], Any]


# --------------------------------------------------------------------------------------------
# What provisioning returns
# --------------------------------------------------------------------------------------------


@dataclass
class PhysicalResource:
    logical_id: str
    type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)
    created: bool = True  # False: not created locally, the ids are placeholders


@dataclass
class EventSourceSpec:
    """One event source of a function (a SAM ``Events`` entry or an EventSourceMapping)."""

    function: str  # logical id of the function
    name: str  # the Events key, or the logical id of the AWS::Lambda::EventSourceMapping
    type: str  # SAM event type: SQS, DynamoDB, Kinesis, Api, HttpApi, Schedule, SNS, S3, ...
    properties: dict[str, Any]  # resolved
    source_arn: str | None = None
    queue_url: str | None = None  # SQS sources

    @property
    def enabled(self) -> bool:
        return str(self.properties.get("Enabled", True)).lower() != "false"

    @property
    def batch_size(self) -> int:
        default = 10 if self.type == "SQS" else 100
        return int(self.properties.get("BatchSize", default))

    @property
    def maximum_batching_window(self) -> float:
        return float(self.properties.get("MaximumBatchingWindowInSeconds", 0))

    @property
    def report_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in (self.properties.get("FunctionResponseTypes") or [])

    @property
    def starting_position(self) -> str:
        return str(self.properties.get("StartingPosition", "LATEST"))

    @property
    def filter_criteria(self) -> dict[str, Any] | None:
        return self.properties.get("FilterCriteria")

    @property
    def maximum_retry_attempts(self) -> int:
        return int(self.properties.get("MaximumRetryAttempts", -1))

    @property
    def maximum_concurrency(self) -> int | None:
        """``ScalingConfig.MaximumConcurrency`` of an SQS source: the most batches at once (None: unset)."""
        value = (self.properties.get("ScalingConfig") or {}).get("MaximumConcurrency")
        return int(value) if value is not None else None


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    environment: dict[str, str]
    timeout: int
    memory_size: int
    layers: list[Path]
    events: list[EventSourceSpec] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)  # resolved, Globals merged
    #: ``herald local --built``: the Lambda Python and the runtime shim it runs on (None: the venv's).
    built: BuiltRuntime | None = None

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def reserved_concurrency(self) -> int | None:
        """``ReservedConcurrentExecutions``: the most executions at once (None: unreserved)."""
        value = self.properties.get("ReservedConcurrentExecutions")
        return int(value) if value is not None else None


@dataclass
class RouteSpec:
    """One ``Type: Api`` event of a function: a method on a resource path of a REST API."""

    function: str  # logical id of the function
    event: str  # the Events key
    path: str  # the resource path template: /communities/{id}, /{proxy+}
    method: str  # upper case; ANY matches every method


@dataclass
class ApiSpec:
    """A REST API (``AWS::Serverless::Api``, ``AWS::ApiGateway::RestApi`` or SAM's implicit one)."""

    logical_id: str
    api_id: str  # what Ref gives: the id in https://{api_id}.execute-api.{region}.amazonaws.com/{stage}
    stage: str
    binary_media_types: list[str] = field(default_factory=list)  # "image/png", "image/*", "*/*"
    cors: dict[str, str] | None = None  # Access-Control-* header -> value, for preflight requests
    routes: list[RouteSpec] = field(default_factory=list)


@dataclass
class Resources:
    template: Template
    parameters: dict[str, Any]
    resources: dict[str, PhysicalResource]
    functions: dict[str, FunctionSpec]
    outputs: dict[str, Any]
    skipped: dict[str, str]  # logical id -> why it was not created
    resolver: Resolver | None = None
    apis: dict[str, ApiSpec] = field(default_factory=dict)  # logical id -> REST API with its routes
    api_url: str | None = None  # where the local API Gateway serves them (None: not served)
    site_url: str | None = None  # where the local site host serves the site bucket (None: not served)

    def __getitem__(self, logical_id: str) -> Any:
        return self.resources[logical_id].ref

    def ref(self, logical_id: str) -> Any:
        return self.resources[logical_id].ref

    def attr(self, logical_id: str, attribute: str) -> Any:
        return self.resources[logical_id].attributes[attribute]

    def of_type(self, rtype: str) -> dict[str, PhysicalResource]:
        return {k: v for k, v in self.resources.items() if v.type == rtype}

    def _named(self, output: str, logical_id: str) -> Any:
        if output in self.outputs:
            return self.outputs[output]
        if logical_id in self.resources:
            return self.resources[logical_id].ref
        raise KeyError(f"neither Output {output} nor resource {logical_id} exists")

    # Herald's names (the Outputs the CLI reads, else the logical ids).
    @property
    def uploads_bucket(self) -> str:
        return self._named("UploadsBucketName", "UploadsBucket")

    @property
    def ingest_queue_url(self) -> str:
        return self._named("IngestQueueUrl", "IngestQueue")

    @property
    def ingest_dlq_url(self) -> str:
        return self._named("IngestDeadLetterQueueUrl", "IngestDeadLetterQueue")

    @property
    def content_table(self) -> str:
        return self._named("ContentTableName", "ContentTable")


# --------------------------------------------------------------------------------------------
# Provisioning
# --------------------------------------------------------------------------------------------


def provision(
    template: str | Path | Template,
    session: boto3.Session | None = None,
    *,
    endpoint_url: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    client_factory: ClientFactory | None = None,
    stack_name: str = STACK_NAME,
    api_url: str | None = None,
    local_platform_applications: bool = True,
    site_url: str | None = None,
) -> Resources:
    """Create every supported resource of ``template`` and resolve its functions and Outputs.

    Clients come from ``client_factory(service)`` if given, else from ``session`` (or a new
    session with test credentials) with ``endpoint_url`` and region us-east-1.

    ``api_url``: where the local API Gateway serves the template's REST APIs; every
    ``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`` that an expression yields
    (Outputs, function environments ...) becomes this URL.  ``local_platform_applications``:
    create SNS platform applications for the push parameters left empty (see
    :data:`LOCAL_PLATFORM_APPLICATIONS`). ``site_url``: where the local site host serves the site
    bucket; every ``https://<distribution>.cloudfront.net`` becomes it (so a ``PublicSiteUrl`` left
    empty, which names the distribution, names the local site).
    """
    if not isinstance(template, Template):
        template = Template.load(template)
    if client_factory is None:
        if session is None:
            session = boto3.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
            )
        sess = session

        def client_factory(service: str) -> Any:
            return sess.client(service, endpoint_url=endpoint_url, region_name=REGION)

    return Provisioner(
        template,
        client_factory,
        parameters or {},
        stack_name,
        api_url=api_url,
        local_platform_applications=local_platform_applications,
        site_url=site_url,
    ).run()


# Template parameters naming SNS platform applications: when left empty, the local cloud creates
# one (name, platform) and passes its ARN, so that mobile push works locally (moto keeps the messages).
LOCAL_PLATFORM_APPLICATIONS: dict[str, tuple[str, str]] = {
    "FcmPlatformApplicationArn": (f"{STACK_NAME}-fcm", "GCM"),
    "ApnsPlatformApplicationArn": (f"{STACK_NAME}-apns", "APNS"),
}

API_TYPES = ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi")
IMPLICIT_API = "ServerlessRestApi"  # SAM's API for Api events without RestApiId
SECRET_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def template_has_api_events(template: Template) -> bool:
    """Whether any function of the template has a ``Type: Api`` event (the local API Gateway serves those)."""
    for lid, body in template.resources.items():
        if body.get("Type") != "AWS::Serverless::Function":
            continue
        events = template.resource_properties(lid).get("Events") or {}
        if any(isinstance(e, dict) and e.get("Type") == "Api" for e in events.values()):
            return True
    return False


def generate_secret_string(spec: Mapping[str, Any]) -> str:
    """A random secret as Secrets Manager's ``GenerateSecretString`` makes it (the common options)."""
    length = int(spec.get("PasswordLength", 32))
    excluded = set(str(spec.get("ExcludeCharacters", "")))
    pools = []
    for flag, chars in (
        ("ExcludeLowercase", string.ascii_lowercase),
        ("ExcludeUppercase", string.ascii_uppercase),
        ("ExcludeNumbers", string.digits),
        ("ExcludePunctuation", SECRET_PUNCTUATION),
    ):
        if not _bool(spec.get(flag, False)):
            pool = "".join(c for c in chars if c not in excluded)
            if pool:
                pools.append(pool)
    if _bool(spec.get("IncludeSpace", False)) and " " not in excluded:
        pools.append(" ")
    if not pools:
        raise TemplateError("GenerateSecretString excludes every character")
    alphabet = "".join(pools)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if not _bool(spec.get("RequireEachIncludedType", True)) or length < len(pools):
            break
        if all(any(c in pool for c in password) for pool in pools):
            break
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if template is not None and key:
        document = json.loads(template) if isinstance(template, str) else dict(template)
        document[str(key)] = password
        return json.dumps(document)
    return password


def local_id(*parts: str, length: int = 10) -> str:
    """A stable lower-case id (API ids, resource ids) derived from names."""
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:length]


def _notification_free(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != "NotificationConfiguration"}


class Provisioner:
    def __init__(
        self,
        template: Template,
        client_factory: ClientFactory,
        parameters: Mapping[str, Any],
        stack_name: str = STACK_NAME,
        *,
        api_url: str | None = None,
        local_platform_applications: bool = True,
        site_url: str | None = None,
    ) -> None:
        self.template = template
        self.site_url = site_url.rstrip("/") if site_url else None
        self.api_url = api_url.rstrip("/") if api_url else None
        self.local_platform_applications = local_platform_applications
        self._client_factory = client_factory
        self._clients: dict[str, Any] = {}
        self.stack_name = stack_name
        self.physical: dict[str, PhysicalResource] = {}
        self.skipped: dict[str, str] = {}
        self.resolver = Resolver(
            template,
            template.parameter_values(parameters),
            ref=lambda lid: self.physical[lid].ref,
            getatt=self._getatt,
            stack_name=stack_name,
            rewrite=self._local_urls if self.api_url or self.site_url else None,
        )
        self._deferred: list[Callable[[], None]] = []

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._client_factory(service)
        return self._clients[service]

    def _getatt(self, logical_id: str, attribute: str) -> Any:
        return self.physical[logical_id].attributes[attribute]

    # -- order ----------------------------------------------------------------------------------
    def order(self) -> list[str]:
        """Logical ids in creation order: what a resource refers to (or DependsOn) comes first.

        A bucket's NotificationConfiguration is applied after everything else, so it does not
        take part in the ordering (as on AWS, where the queue policy must exist first).
        """
        resources = self.template.resources
        enabled = [lid for lid in resources if self.resolver.resource_enabled(lid)]
        for lid in resources:
            if lid not in enabled:
                self.skipped[lid] = "condition is false"
        known = set(enabled)
        deps: dict[str, set[str]] = {}
        for lid in enabled:
            body = resources[lid]
            props = body.get("Properties") or {}
            if body.get("Type") == "AWS::S3::Bucket":
                props = _notification_free(props)
            if body.get("Type") == "AWS::Serverless::Function":
                props = self.template.resource_properties(lid)
            depends_on = body.get("DependsOn") or []
            if isinstance(depends_on, str):
                depends_on = [depends_on]
            deps[lid] = (references(props, known) | {d for d in depends_on if d in known}) - {lid}
        ordered: list[str] = []
        done: set[str] = set()
        pending = list(enabled)
        while pending:
            ready = [lid for lid in pending if deps[lid] <= done]
            if not ready:
                # A cycle: take the first in template order and hope its references resolve.
                ready = [pending[0]]
                log.warning("dependency cycle among %s; creating %s first", pending, ready[0])
            for lid in ready:
                ordered.append(lid)
                done.add(lid)
                pending.remove(lid)
        return ordered

    # -- run ------------------------------------------------------------------------------------
    def run(self) -> Resources:
        if self.local_platform_applications:
            self._create_platform_applications()
        for lid in self.order():
            rtype = self.template.resources[lid].get("Type", "")
            handler = getattr(self, "_create_" + rtype.replace("::", "_").replace("AWS_", "", 1), None)
            if handler is None:
                self.physical[lid] = self._placeholder(lid, rtype)
                self.skipped[lid] = f"{rtype} is not needed locally"
                log.debug("not creating %s (%s): not needed locally", lid, rtype)
                continue
            props = self.template.resource_properties(lid)
            self.physical[lid] = handler(lid, props)
            log.debug("created %s (%s): %s", lid, rtype, self.physical[lid].ref)
        for step in self._deferred:
            step()
        functions = self._functions()
        outputs = self._outputs()
        return Resources(
            template=self.template,
            parameters=self.resolver.parameters,
            resources=self.physical,
            functions=functions,
            outputs=outputs,
            skipped=self.skipped,
            resolver=self.resolver,
            apis=self._apis(functions),
            api_url=self.api_url,
            site_url=self.site_url,
        )

    # -- local stand-ins --------------------------------------------------------------------------
    def _create_platform_applications(self) -> None:
        """SNS platform applications for the push parameters left empty, their ARNs as the values."""
        for parameter, (name, platform) in LOCAL_PLATFORM_APPLICATIONS.items():
            if parameter not in self.resolver.parameters or self.resolver.parameters[parameter]:
                continue
            attributes = {"PlatformCredential": f"{name}-credential"}
            if platform.startswith("APNS"):
                attributes["PlatformPrincipal"] = f"{name}-principal"
            arn = self.client("sns").create_platform_application(
                Name=name, Platform=platform, Attributes=attributes
            )["PlatformApplicationArn"]
            self.resolver.parameters[parameter] = arn
            log.debug("parameter %s: local platform application %s", parameter, arn)

    def _local_urls(self, text: str) -> str:
        """``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`` -> the local API's URL;
        ``https://<distribution>.cloudfront.net`` -> the local site's URL."""
        if self.site_url is not None and ".cloudfront.net" in text:
            for res in self.physical.values():
                if res.type == "AWS::CloudFront::Distribution":
                    pattern = rf"https?://{re.escape(str(res.attributes['DomainName']))}"
                    text = re.sub(pattern, self.site_url, text)
        if "execute-api" not in text or self.api_url is None:
            return text
        for res in self.physical.values():
            if res.type in API_TYPES:
                pattern = rf"https://{re.escape(str(res.ref))}\.execute-api\.[a-z0-9-]+\.amazonaws\.com(/[^/?#\s]*)?"
                text = re.sub(pattern, self.api_url, text)
        return text

    def _name(self, props: Mapping[str, Any], key: str, lid: str, lower: bool = False) -> str:
        if key in props:
            return str(self.resolver.resolve(props[key]))
        name = f"{self.stack_name}-{lid}"
        return name.lower()[:63] if lower else name

    def _arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{PARTITION}:{service}:{REGION if region else ''}:{ACCOUNT_ID if account else ''}:{resource}"
        )

    def _placeholder(self, lid: str, rtype: str) -> PhysicalResource:
        props = self.template.resources[lid].get("Properties") or {}
        if rtype == "AWS::Serverless::LayerVersion" or rtype == "AWS::Lambda::LayerVersion":
            name = self._try_resolve(props.get("LayerName")) or f"{self.stack_name}-{lid}"
            arn = self._arn("lambda", f"layer:{name}:1")
            return PhysicalResource(lid, rtype, arn, {"Arn": arn}, created=False)
        if rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            name = self._try_resolve(props.get("FunctionName")) or f"{self.stack_name}-{lid}"
            arn = self._arn("lambda", f"function:{name}")
            return PhysicalResource(lid, rtype, name, {"Arn": arn}, created=False)
        if rtype.startswith("AWS::CloudFront::"):
            return self._cloudfront_placeholder(lid, rtype)
        if rtype == "AWS::IAM::Role":
            name = self._try_resolve(props.get("RoleName")) or f"{self.stack_name}-{lid}"
            arn = self._arn("iam", f"role/{name}", region=False)
            return PhysicalResource(lid, rtype, name, {"Arn": arn, "RoleId": f"AROA{lid.upper()}"}, False)
        name = f"{self.stack_name}-{lid}"
        service = rtype.split("::")[1].lower() if rtype.count("::") >= 2 else "unknown"
        return PhysicalResource(lid, rtype, name, {"Arn": self._arn(service, name)}, created=False)

    def _cloudfront_placeholder(self, lid: str, rtype: str) -> PhysicalResource:
        """CloudFront is not emulated (the local site host serves the bucket): ids of the right shape."""
        ident = "E" + local_id(self.stack_name, lid, length=13).upper()
        kind = rtype.rsplit("::", 1)[1]
        if kind == "Distribution":
            arn = f"arn:{PARTITION}:cloudfront::{ACCOUNT_ID}:distribution/{ident}"
            domain = f"d{local_id(self.stack_name, lid, length=13)}.cloudfront.net"
            return PhysicalResource(lid, rtype, ident, {"Id": ident, "DomainName": domain, "Arn": arn}, False)
        if kind == "Function":
            props = self.template.resources[lid].get("Properties") or {}
            name = self._try_resolve(props.get("Name")) or lid
            arn = f"arn:{PARTITION}:cloudfront::{ACCOUNT_ID}:function/{name}"
            return PhysicalResource(lid, rtype, arn, {"FunctionARN": arn, "Stage": "LIVE"}, created=False)
        uuid_like = local_id(self.stack_name, lid, length=32)
        ident = "-".join((uuid_like[:8], uuid_like[8:12], uuid_like[12:16], uuid_like[16:20], uuid_like[20:]))
        attributes = {"Id": ident, "LastModifiedTime": "1970-01-01T00:00:00Z"}
        return PhysicalResource(lid, rtype, ident, attributes, created=False)

    def _try_resolve(self, value: Any) -> Any:
        if value is None:
            return None
        try:
            return self.resolver.resolve(value)
        except TemplateError:
            return None

    # -- S3 -------------------------------------------------------------------------------------
    def _create_S3_Bucket(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        s3 = self.client("s3")
        name = self._name(props, "BucketName", lid, lower=True)
        p = self.resolver.resolve(_notification_free(props))
        s3.create_bucket(Bucket=name)
        if "VersioningConfiguration" in p:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": p["VersioningConfiguration"]["Status"]}
            )
        if "BucketEncryption" in p:
            rules = []
            for rule in p["BucketEncryption"].get("ServerSideEncryptionConfiguration", []):
                api_rule: dict[str, Any] = {
                    "ApplyServerSideEncryptionByDefault": rule.get("ServerSideEncryptionByDefault", {})
                }
                if "BucketKeyEnabled" in rule:
                    api_rule["BucketKeyEnabled"] = _bool(rule["BucketKeyEnabled"])
                rules.append(api_rule)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in p:
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    k: _bool(v) for k, v in p["PublicAccessBlockConfiguration"].items()
                },
            )
        if "OwnershipControls" in p:
            self._optional(
                lid,
                "OwnershipControls",
                lambda: s3.put_bucket_ownership_controls(
                    Bucket=name, OwnershipControls={"Rules": p["OwnershipControls"]["Rules"]}
                ),
            )
        if "LifecycleConfiguration" in p:
            rules = [_lifecycle_rule(r) for r in p["LifecycleConfiguration"].get("Rules", [])]
            self._optional(
                lid,
                "LifecycleConfiguration",
                lambda: s3.put_bucket_lifecycle_configuration(
                    Bucket=name, LifecycleConfiguration={"Rules": rules}
                ),
            )
        if "CorsConfiguration" in p:
            cors = []
            for rule in p["CorsConfiguration"].get("CorsRules", []):
                r = {k: v for k, v in rule.items() if k != "MaxAge"}
                if "MaxAge" in rule:
                    r["MaxAgeSeconds"] = int(rule["MaxAge"])
                cors.append(r)
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": cors})
        if p.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": p["Tags"]})
        for key in p:
            if key not in {
                "BucketName",
                "VersioningConfiguration",
                "BucketEncryption",
                "PublicAccessBlockConfiguration",
                "OwnershipControls",
                "LifecycleConfiguration",
                "CorsConfiguration",
                "Tags",
            }:
                log.debug("bucket %s: property %s is not applied locally", lid, key)
        if "NotificationConfiguration" in props:
            self._deferred.append(lambda: self._bucket_notifications(lid, name, props))
        return PhysicalResource(
            lid,
            "AWS::S3::Bucket",
            name,
            {
                "Arn": f"arn:{PARTITION}:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
                "DualStackDomainName": f"{name}.s3.dualstack.{REGION}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{REGION}.amazonaws.com",
            },
        )

    def _bucket_notifications(self, lid: str, name: str, props: Mapping[str, Any]) -> None:
        conf = self.resolver.resolve(props["NotificationConfiguration"])
        api: dict[str, Any] = {}

        def filt(entry: Mapping[str, Any]) -> dict[str, Any]:
            rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            return {"Filter": {"Key": {"FilterRules": rules}}} if rules else {}

        for cfn_key, arn_key, api_key in (
            ("QueueConfigurations", "Queue", "QueueArn"),
            ("TopicConfigurations", "Topic", "TopicArn"),
        ):
            entries = conf.get(cfn_key) or []
            if entries:
                api[cfn_key] = [{api_key: e[arn_key], "Events": [e["Event"]], **filt(e)} for e in entries]
        if conf.get("LambdaConfigurations"):
            log.debug("bucket %s: direct Lambda notifications are not routed locally", lid)
        if _bool((conf.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled", False)):
            api["EventBridgeConfiguration"] = {}
        self.client("s3").put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=api)

    def _create_S3_BucketPolicy(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        policy = local_bucket_policy(p["PolicyDocument"])
        if policy is None:
            log.debug("bucket policy %s: nothing moto can evaluate; not applied", lid)
        else:
            self.client("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(policy))
        return PhysicalResource(lid, "AWS::S3::BucketPolicy", p["Bucket"])

    # -- SQS ------------------------------------------------------------------------------------
    _QUEUE_ATTRIBUTES = (
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
    )

    def _create_SQS_Queue(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        fifo = _bool(p.get("FifoQueue", False))
        name = p.get("QueueName") or f"{self.stack_name}-{lid}" + (".fifo" if fifo else "")
        attributes: dict[str, str] = {}
        for key in self._QUEUE_ATTRIBUTES:
            if key in p:
                value = p[key]
                if isinstance(value, dict | list):
                    value = json.dumps(value)
                elif isinstance(value, bool):
                    value = "true" if value else "false"
                attributes[key] = str(value)
        kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if p.get("Tags"):
            kwargs["tags"] = {t["Key"]: t["Value"] for t in p["Tags"]}
        url = self.client("sqs").create_queue(**kwargs)["QueueUrl"]
        return PhysicalResource(
            lid,
            "AWS::SQS::Queue",
            url,
            {"Arn": self._arn("sqs", name), "QueueName": name, "QueueUrl": url},
        )

    def _create_SQS_QueuePolicy(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        for url in p["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])}
            )
        return PhysicalResource(lid, "AWS::SQS::QueuePolicy", f"{self.stack_name}-{lid}")

    # -- DynamoDB -------------------------------------------------------------------------------
    def _create_DynamoDB_Table(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        name = p.get("TableName") or f"{self.stack_name}-{lid}"
        billing = p.get("BillingMode", "PROVISIONED")
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"],
            "BillingMode": billing,
        }

        def throughput(spec: Mapping[str, Any]) -> dict[str, int]:
            pt = spec.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            return {k: int(v) for k, v in pt.items()}

        if billing == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = throughput(p)
        if p.get("GlobalSecondaryIndexes"):
            gsis = []
            for gsi in p["GlobalSecondaryIndexes"]:
                g = {k: gsi[k] for k in ("IndexName", "KeySchema", "Projection")}
                if billing == "PROVISIONED":
                    g["ProvisionedThroughput"] = throughput(gsi)
                gsis.append(g)
            kwargs["GlobalSecondaryIndexes"] = gsis
        if p.get("LocalSecondaryIndexes"):
            kwargs["LocalSecondaryIndexes"] = p["LocalSecondaryIndexes"]
        stream = p.get("StreamSpecification")
        if stream:
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        if p.get("TableClass"):
            kwargs["TableClass"] = p["TableClass"]
        if p.get("Tags"):
            kwargs["Tags"] = p["Tags"]
        ddb = self.client("dynamodb")
        description = ddb.create_table(**kwargs)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl and _bool(ttl.get("Enabled", False)):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = p.get("PointInTimeRecoverySpecification")
        if pitr and _bool(pitr.get("PointInTimeRecoveryEnabled", False)):
            self._optional(
                lid,
                "PointInTimeRecoverySpecification",
                lambda: ddb.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                ),
            )
        for key in ("SSESpecification", "DeletionProtectionEnabled", "ContributorInsightsSpecification"):
            if key in p:
                log.debug("table %s: property %s is not applied locally", lid, key)
        attrs = {"Arn": description["TableArn"]}
        if description.get("LatestStreamArn"):
            attrs["StreamArn"] = description["LatestStreamArn"]
        return PhysicalResource(lid, "AWS::DynamoDB::Table", name, attrs)

    def _create_Serverless_SimpleTable(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        key = p.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        ktype = {"String": "S", "Number": "N", "Binary": "B"}[key.get("Type", "String")]
        table_props = {
            "TableName": p.get("TableName") or f"{self.stack_name}-{lid}",
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": ktype}],
            "BillingMode": "PAY_PER_REQUEST",
        }
        res = self._create_DynamoDB_Table(lid, table_props)
        res.type = "AWS::Serverless::SimpleTable"
        return res

    # -- SNS ------------------------------------------------------------------------------------
    def _create_SNS_Topic(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        fifo = _bool(p.get("FifoTopic", False))
        name = p.get("TopicName") or f"{self.stack_name}-{lid}" + (".fifo" if fifo else "")
        attributes = {}
        for key in ("DisplayName", "KmsMasterKeyId", "ContentBasedDeduplication"):
            if key in p:
                attributes[key] = str(p[key]).lower() if isinstance(p[key], bool) else str(p[key])
        if fifo:
            attributes["FifoTopic"] = "true"
        sns = self.client("sns")
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        for sub in p.get("Subscription") or []:
            sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
        return PhysicalResource(lid, "AWS::SNS::Topic", arn, {"TopicArn": arn, "TopicName": name})

    def _create_SNS_Subscription(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        attributes = {}
        for key in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy"):
            if key in p:
                attributes[key] = p[key] if isinstance(p[key], str) else json.dumps(p[key])
        for key in ("RawMessageDelivery", "FilterPolicyScope"):
            if key in p:
                attributes[key] = str(p[key]).lower() if isinstance(p[key], bool) else str(p[key])
        arn = self.client("sns").subscribe(
            TopicArn=p["TopicArn"],
            Protocol=p["Protocol"],
            Endpoint=p["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return PhysicalResource(lid, "AWS::SNS::Subscription", arn, {"Arn": arn})

    def _create_SNS_TopicPolicy(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        for arn in p["Topics"]:
            self._optional(
                lid,
                "PolicyDocument",
                lambda arn=arn: self.client("sns").set_topic_attributes(
                    TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(p["PolicyDocument"])
                ),
            )
        return PhysicalResource(lid, "AWS::SNS::TopicPolicy", f"{self.stack_name}-{lid}")

    # -- SSM, logs, alarms ------------------------------------------------------------------------
    def _create_SSM_Parameter(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        name = p.get("Name") or f"{self.stack_name}-{lid}"
        kwargs: dict[str, Any] = {"Name": name, "Value": str(p["Value"]), "Type": p.get("Type", "String")}
        if p.get("Description"):
            kwargs["Description"] = p["Description"]
        kwargs["Overwrite"] = True
        self.client("ssm").put_parameter(**kwargs)
        return PhysicalResource(
            lid, "AWS::SSM::Parameter", name, {"Type": kwargs["Type"], "Value": kwargs["Value"]}
        )

    def _create_Logs_LogGroup(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        name = p.get("LogGroupName") or f"{self.stack_name}-{lid}"
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in p:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
        return PhysicalResource(
            lid, "AWS::Logs::LogGroup", name, {"Arn": self._arn("logs", f"log-group:{name}:*")}
        )

    _ALARM_KEYS = (
        "AlarmDescription",
        "ActionsEnabled",
        "OKActions",
        "AlarmActions",
        "InsufficientDataActions",
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Dimensions",
        "Period",
        "Unit",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "EvaluateLowSampleCountPercentile",
        "Metrics",
        "ThresholdMetricId",
    )

    def _create_CloudWatch_Alarm(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        name = p.get("AlarmName") or f"{self.stack_name}-{lid}"
        kwargs: dict[str, Any] = {"AlarmName": name}
        for key in self._ALARM_KEYS:
            if key in p:
                value = p[key]
                if key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
                    value = int(value)
                elif key == "Threshold":
                    value = float(value)
                elif key == "ActionsEnabled":
                    value = _bool(value)
                kwargs[key] = value
        self._optional(lid, "alarm", lambda: self.client("cloudwatch").put_metric_alarm(**kwargs))
        return PhysicalResource(
            lid, "AWS::CloudWatch::Alarm", name, {"Arn": self._arn("cloudwatch", f"alarm:{name}")}
        )

    def _optional(self, lid: str, what: str, call: Callable[[], Any]) -> None:
        """Apply something the local cloud can do without: a failure is logged, not raised."""
        try:
            call()
        except Exception as exc:  # moto may not implement it
            log.debug("%s: %s not applied locally: %s", lid, what, exc)

    # -- Secrets Manager ----------------------------------------------------------------------------
    def _create_SecretsManager_Secret(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        p = self.resolver.resolve(props)
        name = p.get("Name") or f"{self.stack_name}-{lid}"
        if "SecretString" in p:
            value = str(p["SecretString"])
        else:
            value = generate_secret_string(p.get("GenerateSecretString") or {})
        kwargs: dict[str, Any] = {"Name": name, "SecretString": value}
        if p.get("Description"):
            kwargs["Description"] = p["Description"]
        if p.get("Tags"):
            kwargs["Tags"] = p["Tags"]
        arn = self.client("secretsmanager").create_secret(**kwargs)["ARN"]
        return PhysicalResource(lid, "AWS::SecretsManager::Secret", arn, {"Id": arn})

    # -- API Gateway (served by the local API Gateway, nothing is created in moto) ----------------
    def _create_Serverless_Api(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        return self._rest_api(lid, "AWS::Serverless::Api")

    def _create_ApiGateway_RestApi(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        return self._rest_api(lid, "AWS::ApiGateway::RestApi")

    def _rest_api(self, lid: str, rtype: str) -> PhysicalResource:
        api_id = local_id(self.stack_name, lid)
        return PhysicalResource(
            lid, rtype, api_id, {"RootResourceId": local_id(self.stack_name, lid, "/", length=10)}
        )

    def _apis(self, functions: Mapping[str, FunctionSpec]) -> dict[str, ApiSpec]:
        """The REST APIs with the routes of the functions' ``Type: Api`` events."""
        apis: dict[str, ApiSpec] = {}
        by_id: dict[str, ApiSpec] = {}
        for lid, res in self.physical.items():
            if res.type not in API_TYPES:
                continue
            raw = self.template.resource_properties(lid)
            p = {k: self._try_resolve(raw.get(k)) for k in ("StageName", "BinaryMediaTypes", "Cors")}
            stage = str(p["StageName"] or ("Prod" if res.type == "AWS::Serverless::Api" else "dev"))
            binary = p["BinaryMediaTypes"] or []
            spec = ApiSpec(
                logical_id=lid,
                api_id=str(res.ref),
                stage=stage,
                binary_media_types=[str(t).replace("~1", "/") for t in binary],
                cors=_cors_headers(p.get("Cors")),
            )
            apis[lid] = by_id[spec.api_id] = spec
        for fn in functions.values():
            for event in fn.events:
                if event.type != "Api":
                    continue
                rest_api = event.properties.get("RestApiId")
                if rest_api is None:
                    if IMPLICIT_API not in apis:
                        apis[IMPLICIT_API] = ApiSpec(
                            IMPLICIT_API, local_id(self.stack_name, IMPLICIT_API), "Prod"
                        )
                    api = apis[IMPLICIT_API]
                else:
                    found = by_id.get(str(rest_api))
                    if found is None:
                        log.warning(
                            "%s: event %s names an API %s that is not local",
                            fn.logical_id,
                            event.name,
                            rest_api,
                        )
                        continue
                    api = found
                api.routes.append(
                    RouteSpec(
                        function=fn.logical_id,
                        event=event.name,
                        path=str(event.properties["Path"]),
                        method=str(event.properties["Method"]).upper(),
                    )
                )
        return apis

    # -- functions --------------------------------------------------------------------------------
    def _create_Serverless_Function(self, lid: str, props: dict[str, Any]) -> PhysicalResource:
        name = self._name(props, "FunctionName", lid)
        arn = self._arn("lambda", f"function:{name}")
        return PhysicalResource(lid, "AWS::Serverless::Function", name, {"Arn": arn}, created=False)

    def _functions(self) -> dict[str, FunctionSpec]:
        functions: dict[str, FunctionSpec] = {}
        for lid, res in self.physical.items():
            if res.type != "AWS::Serverless::Function":
                continue
            p = self.resolver.resolve(self.template.resource_properties(lid))
            code_uri = p.get("CodeUri")
            if not isinstance(code_uri, str):
                self.skipped[lid] = "CodeUri is not a local directory"
                log.warning("function %s: CodeUri %r is not a local directory", lid, code_uri)
                continue
            layers = []
            for layer_arn in p.get("Layers") or []:
                layer_dir = self._layer_dir(layer_arn)
                if layer_dir is not None:
                    layers.append(layer_dir)
            env = (p.get("Environment") or {}).get("Variables") or {}
            spec = FunctionSpec(
                logical_id=lid,
                name=res.ref,
                arn=res.attributes["Arn"],
                code_dir=(self.template.base_dir / code_uri).resolve(),
                handler=p["Handler"],
                runtime=str(p.get("Runtime", "python3")),
                environment={k: _env_str(v) for k, v in env.items()},
                timeout=int(p.get("Timeout", 3)),
                memory_size=int(p.get("MemorySize", 128)),
                layers=layers,
                properties=p,
            )
            for event_name, event in (p.get("Events") or {}).items():
                spec.events.append(
                    self._event_source(lid, event_name, event["Type"], event.get("Properties") or {})
                )
            functions[lid] = spec
        # Explicit event source mappings.
        by_name = {f.name: f for f in functions.values()}
        by_arn = {f.arn: f for f in functions.values()}
        for lid, body in self.template.resources.items():
            if body.get("Type") != "AWS::Lambda::EventSourceMapping":
                continue
            if self.skipped.get(lid) == "condition is false":
                continue
            p = self.resolver.resolve(body.get("Properties") or {})
            target = by_name.get(p.get("FunctionName")) or by_arn.get(p.get("FunctionName"))
            if target is None:
                log.debug("event source mapping %s: function %s is not local", lid, p.get("FunctionName"))
                continue
            arn = str(p.get("EventSourceArn", ""))
            service = arn.split(":")[2] if arn.count(":") >= 5 else ""
            etype = {"sqs": "SQS", "dynamodb": "DynamoDB", "kinesis": "Kinesis"}.get(service, "Unknown")
            props = dict(p)
            props.pop("FunctionName", None)
            target.events.append(self._event_source(target.logical_id, lid, etype, props))
        return functions

    def _layer_dir(self, layer_arn: str) -> Path | None:
        for lid, res in self.physical.items():
            if res.ref == layer_arn and res.type == "AWS::Serverless::LayerVersion":
                content = (self.template.resources[lid].get("Properties") or {}).get("ContentUri")
                if isinstance(content, str):
                    return (self.template.base_dir / content).resolve()
        return None

    def _event_source(self, function: str, name: str, etype: str, props: dict[str, Any]) -> EventSourceSpec:
        spec = EventSourceSpec(function=function, name=name, type=etype, properties=props)
        if etype == "SQS":
            spec.source_arn = props.get("Queue") or props.get("EventSourceArn")
            spec.queue_url = self._queue_url(spec.source_arn)
        elif etype in ("DynamoDB", "Kinesis"):
            spec.source_arn = props.get("Stream") or props.get("EventSourceArn")
        elif etype == "SNS":
            spec.source_arn = props.get("Topic")
        return spec

    def _queue_url(self, arn: str | None) -> str | None:
        if not arn:
            return None
        for res in self.physical.values():
            if res.type == "AWS::SQS::Queue" and res.attributes.get("Arn") == arn:
                return res.ref
        try:
            return self.client("sqs").get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        except Exception:
            log.warning("queue %s does not exist locally", arn)
            return None

    # -- outputs --------------------------------------------------------------------------------
    def _outputs(self) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        for name, output in self.template.outputs.items():
            cond = output.get("Condition")
            if cond and not self.resolver.condition(cond):
                continue
            try:
                outputs[name] = self.resolver.resolve(output["Value"])
            except (Unresolved, KeyError) as exc:
                log.debug("output %s not resolvable locally: %s", name, exc)
        return outputs


def local_bucket_policy(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """The bucket policy as applied locally: without the Deny statements that have a Condition.

    moto enforces bucket policies but cannot evaluate condition keys (``aws:SecureTransport``,
    ``aws:SourceArn`` ...): it treats every condition as met, so a conditional Deny such as
    "deny when not over TLS" would deny every request.  Those statements are left out.
    None when no statement is left.
    """
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if not (s.get("Effect") == "Deny" and s.get("Condition"))]
    if not kept:
        return None
    return {**document, "Statement": kept}


def _cors_headers(cors: Any) -> dict[str, str] | None:
    """SAM's ``Cors`` property as the headers of the preflight response (SAM's values are quoted)."""
    if cors is None:
        return None
    if isinstance(cors, str):
        cors = {"AllowOrigin": cors}
    headers: dict[str, str] = {}
    for key, header in (
        ("AllowOrigin", "Access-Control-Allow-Origin"),
        ("AllowMethods", "Access-Control-Allow-Methods"),
        ("AllowHeaders", "Access-Control-Allow-Headers"),
        ("MaxAge", "Access-Control-Max-Age"),
    ):
        if key in cors:
            headers[header] = str(cors[key]).strip("'")
    if _bool(cors.get("AllowCredentials", False)):
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape (the common fields)."""
    out: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "ExpiredObjectDeleteMarker" in rule:
        out["Expiration"] = {"ExpiredObjectDeleteMarker": _bool(rule["ExpiredObjectDeleteMarker"])}
    nve = rule.get("NoncurrentVersionExpiration")
    if nve:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(nve["NoncurrentDays"])}
    if "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])
        }
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort["DaysAfterInitiation"])}
    return out
