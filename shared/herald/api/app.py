"""Herald's HTTP API on Powertools' ``APIGatewayRestResolver`` with validation: its response models,
services and the handler.

The routes are in :mod:`herald.api.routes`, on a ``Router``; :func:`build_app` imports them (and
with them Powertools' event handler and its OpenAPI parameters) and makes the resolver (CORS for the
public site, the OpenAPI document at ``/openapi.json``, Swagger UI at ``/docs``), on the first
request, so that importing this module (the API function's ``import app``) loads neither. The
services (clients, the secret) are made on the first request that needs them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from herald.api.settings import ApiSettings
from herald.content import urls
from herald.content.ids import is_community_id
from herald.content.models import PUBLIC_POST_FIELDS, Community, Post, Variant, VariantOrigin
from herald.core.runtime import Lazy

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.event_handler.openapi.models import SecurityScheme
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

    from herald.api.adapters.dynamo_feed import DynamoFeed
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.members.ports import MemberStore
    from herald.members.service import MembershipService
    from herald.site.adapters.dynamo_variants import DynamoVariantReader

TITLE = "Herald"
VERSION = "1.0.0"

# ----------------------------------------------------------------------------- services


@dataclass
class Services:
    settings: ApiSettings
    content: DynamoContentStore
    feed: DynamoFeed
    members: MemberStore
    membership: MembershipService
    #: The variant items a post answered in another language needs (None: originals only).
    variants: DynamoVariantReader | None = None


def default_services(settings: ApiSettings) -> Services:
    import secrets
    from datetime import UTC, datetime

    from herald.api.adapters.dynamo_feed import DynamoFeed
    from herald.ingest.adapters.dynamo_content import DynamoContentStore
    from herald.members.adapters.dynamo_members import DynamoMemberStore
    from herald.members.adapters.secrets import SecretValue
    from herald.members.adapters.sns_devices import SnsDeviceRegistry
    from herald.members.endpoints import system_resolve
    from herald.members.service import MembershipService
    from herald.site.adapters.dynamo_variants import DynamoVariantReader

    members = DynamoMemberStore(settings.members_table, shards=settings.member_counter_shards)
    return Services(
        settings=settings,
        content=DynamoContentStore(settings.content_table),
        feed=DynamoFeed(settings.content_table),
        variants=DynamoVariantReader(settings.content_table),
        members=members,
        membership=MembershipService(
            store=members,
            devices=SnsDeviceRegistry(settings.platform_applications),
            secret=SecretValue(settings.member_token_secret_arn),
            clock=lambda: datetime.now(UTC),
            random_below=secrets.randbelow,
            random_bytes=secrets.token_bytes,
            shards=settings.member_counter_shards,
            policy=settings.endpoint_policy,
            resolve=system_resolve,
        ),
    )


#: The services, built from the environment on the first request; ``configure(factory)`` swaps them
#: (tests, benchmarks) and rebuilds the resolver, ``configure(None)`` goes back to the environment.
services: Lazy[Services] = Lazy(lambda: default_services(ApiSettings.from_env()), lambda: reset_apps())


def configure(factory: Any) -> None:
    """Swap the services (None: back to the environment's); what was known of communities goes too."""
    with _known_lock:
        _known.clear()
    services.configure(factory)


# ----------------------------------------------------------------------------- response models


class _Out(BaseModel):
    """The base of the response models: each builds its validator and schema on first use (the first
    response of its route, or the OpenAPI document), not at import."""

    model_config = ConfigDict(defer_build=True)


class CommunityOut(_Out):
    id: str
    name: str
    description: str | None = None
    verified: bool
    members: int = Field(description="Exact: the export's baseline plus joins minus leaves.")
    members_display: str = Field(description="Members, short, as the request's locale writes it: 222K.")
    posts: int
    created_year: int | None = None
    join_url: str


class DeliveryOut(_Out):
    targeted: int
    sent: int
    failed: int
    pruned: int
    deferred: int


def _shown(name: str) -> tuple[Any, Any]:
    """A post's field as the API shows it: its type and default, times as the ISO text they are sent as."""
    info = Post.model_fields[name]
    annotation: Any = info.annotation
    if annotation is datetime:
        annotation = str
    elif annotation == datetime | None:
        annotation = str | None
    if info.default_factory is not None:
        return annotation, Field(default_factory=info.default_factory)
    return annotation, (Field() if info.is_required() else Field(default=info.default))


#: A post's fields as the API shows them: those :data:`herald.content.models.PUBLIC_POST_FIELDS`
#: names, in the model's order, with the model's types and defaults.
_SHOWN: dict[str, Any] = {name: _shown(name) for name in PUBLIC_POST_FIELDS if name != "variants"}
_PostFields: type[BaseModel] = create_model("_PostFields", __base__=_Out, **_SHOWN)
#: What a variant replaces of its post when the API answers it: its own text and enrichment.
VARIANT_FIELDS = (
    "title",
    "text",
    "excerpt",
    "links",
    "hashtags",
    "mentions",
    "emoji",
    "countries",
    "topics",
    "word_count",
    "reading_time_s",
)


class VariantLink(_Out):
    lang: str
    machine: bool = Field(description="Translated by machine (Amazon Translate), not by an editor.")
    url: str = Field(description="The variant's page on the public site.")


class PostOut(_PostFields):
    lang: str | None = Field(
        default=None,
        description="The language of the title, text and excerpt answered: the variant chosen by `lang` "
        "or Accept-Language, else the original's (`language`; null when not known).",
    )
    machine: bool = Field(default=False, description="The text answered is a machine translation.")
    variants: list[VariantLink] = Field(
        default_factory=list, description="The post's language variants (the original is not one)."
    )
    delivery: DeliveryOut | None = Field(
        default=None, description="Push statistics of the post (only on a single post; null before any)."
    )


class PostsPage(_Out):
    items: list[PostOut]
    next_cursor: str | None = None


class JoinResponse(_Out):
    member_id: str
    token: str = Field(
        description="The member's secret for changing preferences and leaving; keep it: it is shown "
        "again only to a repeat join that presents it."
    )


class JoinLink(_Out):
    join_url: str
    qr_svg: str
    qr_png: str = Field(description="data: URL of a PNG")


class ErrorOut(_Out):
    error: str
    community: str | None = None
    post_id: str | None = None


class ValidationItem(_Out):
    loc: list[str | int]
    field: str
    type: str
    msg: str


class ValidationOut(_Out):
    statusCode: int
    detail: list[ValidationItem]


def _answer(description: str, model: type[BaseModel] = ErrorOut) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


_NOT_FOUND: dict[int, OpenAPIResponse] = {404: _answer("unknown community")}
_INVALID: dict[int, OpenAPIResponse] = {
    422: _answer("a bad parameter or body; `detail[].loc` names the field", ValidationOut)
}
_BAD_LANGUAGE: dict[int, OpenAPIResponse] = {400: _answer("`lang` is not a language code")}
_UNAVAILABLE: dict[int, OpenAPIResponse] = {503: _answer("a dependency failed for a moment: try again")}
_AUTH: dict[int, OpenAPIResponse] = {
    401: _answer("no bearer token"),
    403: _answer("the token does not open this membership (whether or not it exists)"),
    404: _answer("unknown community, or a membership its token holder already left"),
}


# ----------------------------------------------------------------------------- helpers


def _community(community_id: str) -> Community:
    from herald.members.rules import CommunityNotFound

    if not is_community_id(community_id):
        raise CommunityNotFound(community_id)
    found = services().content.community(community_id)
    if found is None:
        raise CommunityNotFound(community_id)
    with _known_lock:
        _known[community_id] = time.monotonic() + KNOWN_FOR_S
    return found


#: How long an execution environment takes a community it has read for existing, without reading
#: it again: every join asks, and one community's profile is one item (a partition serves 3,000
#: strongly consistent reads a second; a burst of 10,000 joins a second would be throttled).
KNOWN_FOR_S = 10.0
_known: dict[str, float] = {}
_known_lock = threading.Lock()


def _known_community(community_id: str) -> None:
    """Raise CommunityNotFound unless the community exists: read at most once per ``KNOWN_FOR_S``
    per execution environment (an unknown id is read every time; a community removed is still
    taken for existing for at most that long, and its joins find nothing to post to)."""
    with _known_lock:
        until = _known.get(community_id)
    if until is not None and until > time.monotonic():
        return
    _community(community_id)


#: A page of posts stops before this many bytes of posts (Lambda's response limit is 6 MB, the
#: proxy response included; one post alone is at most about 2.8 MB, a 400 KB item escaped).
MAX_PAGE_BYTES = 4 * 1024 * 1024


def response_bytes(value: Any) -> int:
    """What ``value`` adds to the Lambda response: JSON in the body, the body a JSON string in the
    proxy response (every quote and escape written twice)."""
    import json

    return len(json.dumps(json.dumps(value, separators=(",", ":"))))


def _post_out(post: Post, variant: Variant | None = None, site_url: str | None = None) -> PostOut:
    """The post as the API shows it: its original, or ``variant``'s text and enrichment (with
    ``lang`` and ``machine``), and the list of its variants with their pages (on ``site_url``)."""
    values = post.model_dump(mode="json", include=set(PUBLIC_POST_FIELDS) - {"variants"})
    values["lang"] = post.language
    if variant is not None and variant.post_id == post.id:
        values.update(variant.model_dump(mode="json", include=set(VARIANT_FIELDS)))
        values["lang"] = variant.lang
        values["machine"] = variant.origin == VariantOrigin.MACHINE
    site = site_url or "https://herald.example"
    values["variants"] = [
        {
            "lang": lang,
            "machine": summary.origin == VariantOrigin.MACHINE,
            "url": urls.post_url(site, post.community, post.id, lang),
        }
        for lang, summary in sorted(post.variants.items())
    ]
    return PostOut.model_validate(values)


def _metric(name: str) -> None:
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    Metrics().add_metric(name=name, unit=MetricUnit.Count, value=1)


# ----------------------------------------------------------------------------- the app


def build_app(settings: ApiSettings | None = None) -> APIGatewayRestResolver:
    """The resolver with every route, CORS for the public site, the error mapping and the docs."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from herald.api import errors
    from herald.api.routes import add_document, router

    settings = settings or ApiSettings.from_env()
    cors = CORSConfig(
        allow_origin=settings.site_origin,
        allow_headers=["Authorization", "Content-Type", "Accept-Language"],
        max_age=600,
    )
    app = APIGatewayRestResolver(cors=cors, enable_validation=True)
    app.include_router(router)
    errors.register(app)
    schemes: dict[str, SecurityScheme] = {
        "memberToken": HTTPBearer(description="the token returned when joining")
    }
    app.enable_swagger(path="/docs", title=TITLE, version=VERSION, security_schemes=schemes)
    add_document(app, schemes)

    return app


def _base_path(context: Any) -> str:
    """``/<stage>`` when the request's path carried the stage (an execute-api URL), else ``/``.

    The rule Powertools' Swagger UI applies to the REST API's request context (here a whole
    segment: stage ``dev`` is not the start of ``/devices``).
    """
    stage, path = context.stage, context.path or ""
    if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        return f"/{stage}"
    return "/"


def openapi(settings: ApiSettings | None = None) -> dict[str, Any]:
    import json

    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    schemes: dict[str, SecurityScheme] = {
        "memberToken": HTTPBearer(description="the token returned when joining")
    }
    app = build_app(settings)
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(title=TITLE, version=VERSION, security_schemes=schemes)
    )
    return document


def body_too_large(event: dict[str, Any], limit: int) -> bool:
    body = event.get("body") or ""
    size = len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else len(body)
    if event.get("isBase64Encoded"):
        size = len(body) * 3 // 4
    return size > limit


def json_or_no_body(event: dict[str, Any]) -> bool:
    """Bodies are JSON: any other declared type is refused before routing."""
    if not event.get("body"):
        return True
    headers = event.get("headers") or {}
    content_type = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "")
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("", "application/json") or (media.startswith("application/") and media.endswith("+json"))


#: Limits of what a JSON body may hold before any model sees it (no body of this API comes near).
MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 40
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyRefused(ValueError):
    """A body that is not JSON this API can read; the message is the reason, for the 422."""


def _number(kind: str, convert: Any) -> Any:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise BodyRefused(f"a number of {len(text)} characters; at most {MAX_NUMBER_CHARS} are accepted")
        value = convert(text)
        if kind == "float" and value in (float("inf"), float("-inf")):
            raise BodyRefused(f"{text} is beyond the range of a number")
        return value

    return parse


def _no_constant(name: str) -> Any:
    raise BodyRefused(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (a hostile body may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def decoded_body(event: dict[str, Any]) -> str | None:
    """The request body as text that parses as JSON within the limits; BodyRefused says why not.

    Checked before routing, so that nothing a body holds (bytes that are not UTF-8, a base64 body
    that is not base64, nesting deep enough to exhaust the parser, a number of thousands of digits,
    ``NaN``) reaches Powertools or pydantic as anything but a 422 naming the reason.
    """
    import base64
    import binascii
    import json

    body = event.get("body")
    if not body or str(event.get("httpMethod", "")).upper() not in _BODY_METHODS:
        return body
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BodyRefused("the body is marked base64 but is not base64") from exc
    elif isinstance(body, bytes):
        raw = body
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates: bytes that were never UTF-8
            raise BodyRefused(f"the body is not UTF-8 (at character {exc.start})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused(f"the body is not UTF-8 (byte {exc.start} is {raw[exc.start]:#04x})") from exc
    try:
        parsed = json.loads(
            text,
            parse_int=_number("int", int),
            parse_float=_number("float", float),
            parse_constant=_no_constant,
        )
    except RecursionError as exc:
        raise BodyRefused(f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from exc
    except json.JSONDecodeError as exc:
        raise BodyRefused(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if _depth(parsed) > MAX_JSON_DEPTH:
        raise BodyRefused(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    if _has_surrogate(parsed):
        raise BodyRefused("the body holds a lone surrogate escape (\\ud800-\\udfff), which is not text")
    return text


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _refusal(status: int, body: dict[str, Any], origin: str) -> dict[str, Any]:
    import json

    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Access-Control-Allow-Origin": origin},
        "multiValueHeaders": {},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


_local = threading.local()


def default_app() -> APIGatewayRestResolver:
    """The resolver of this thread (a resolver holds the event it is answering: one per thread)."""
    app = getattr(_local, "app", None)
    if app is None:
        app = _local.app = build_app(services().settings)
    return app


def reset_apps() -> None:
    _local.__dict__.clear()


def handle(event: dict[str, Any], context: Any, app: APIGatewayRestResolver | None = None) -> dict[str, Any]:
    """Answer one API Gateway (REST) proxy event: refuse oversized bodies, then route."""
    from herald.api import errors

    settings = services().settings
    if body_too_large(event, settings.max_body_bytes):
        return _refusal(413, errors.too_large(settings.max_body_bytes), settings.site_origin)
    if not json_or_no_body(event):
        return _refusal(415, {"error": "the body must be application/json"}, settings.site_origin)
    try:
        body = decoded_body(event)
    except BodyRefused as exc:
        error = {"loc": ("body",), "type": "json_invalid", "msg": str(exc)}
        return _refusal(422, errors.validation_body([error]), settings.site_origin)
    if body is not event.get("body"):
        event = {**event, "body": body, "isBase64Encoded": False}
    return (app or default_app()).resolve(event, context)


__all__ = ["build_app", "configure", "handle", "openapi", "services"]
