"""The routes of Herald's HTTP API, on a Powertools ``Router`` that :func:`herald.api.app.build_app`
includes in its resolver (importing this module imports Powertools' event handler and its OpenAPI
parameters: the API function's first request does, not its import)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from herald.api import errors
from herald.api.app import (
    _AUTH,
    _BAD_LANGUAGE,
    _INVALID,
    _NOT_FOUND,
    _UNAVAILABLE,
    MAX_PAGE_BYTES,
    TITLE,
    VERSION,
    CommunityOut,
    DeliveryOut,
    JoinLink,
    JoinResponse,
    PostOut,
    PostsPage,
    _answer,
    _base_path,
    _community,
    _known_community,
    _metric,
    _post_out,
    response_bytes,
    services,
)
from herald.api.locale import negotiate
from herald.api.variants import choose, parse_lang
from herald.content.counts import compact_number, member_count
from herald.content.models import Post
from herald.members.rules import JoinRequest, Preferences, PreferencesPatch, bearer_token

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.event_handler.openapi.models import SecurityScheme

router = APIGatewayRouter()

#: Any text: an id that is not a community id (:mod:`herald.content.ids`) names no community that
#: can exist, and is answered as an unknown community is (404), not as a bad parameter.
CommunityId = Annotated[str, Path(min_length=1, description="The community's id")]
MemberId = Annotated[str, Path(min_length=1, max_length=128)]
AcceptLanguage = Annotated[str | None, Header(description="Locale of members_display (default en)")]
#: The language a post is answered in: a variant of the post, else its original.
Lang = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Answer the post's variant in this language (ISO 639-1, optionally with a region "
        "or script: fr, pt-br) when it has one, else its original; takes precedence over Accept-Language. "
        "Not a language code: 400.",
    ),
]
PostLanguages = Annotated[
    str | None,
    Header(
        description="Without `lang`: the post's variant in the first of these languages (q-values) "
        "it has, else its original; also the locale of members_display elsewhere",
    ),
]
# Documented as the memberToken security scheme, not as a parameter.
Authorization = Annotated[str | None, Header(include_in_schema=False)]


@router.get(
    "/communities/<id>",
    summary="A community: profile and counters",
    responses={200: _answer("the community", CommunityOut), **_NOT_FOUND, **_INVALID, **_UNAVAILABLE},
)
def get_community(id: CommunityId, accept_language: AcceptLanguage = None) -> CommunityOut:
    community = _community(id)
    svc = services()
    members = member_count(community.members_baseline, svc.members.count(id))
    return CommunityOut(
        id=community.id,
        name=community.name,
        description=community.description,
        verified=community.verified,
        members=members,
        members_display=compact_number(members, negotiate(accept_language)),
        posts=community.posts,
        created_year=community.created_year,
        join_url=svc.settings.join_url(community.id),
    )


@router.get(
    "/communities/<id>/posts",
    summary="A community's posts: pinned first, then newest first; a page holds `limit` posts "
    "or about 4 MB of them, whichever comes first",
    responses={
        200: _answer("a page of posts", PostsPage),
        **_BAD_LANGUAGE,
        **_NOT_FOUND,
        **_INVALID,
        **_UNAVAILABLE,
    },
)
def list_posts(
    id: CommunityId,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
    topic: Annotated[str | None, Query(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)] = None,
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    language: Annotated[str | None, Query(pattern=r"^[a-z]{2,3}$")] = None,
    lang: Lang = None,
    accept_language: PostLanguages = None,
) -> PostsPage:
    wanted = parse_lang(lang) if lang is not None else None
    _known_community(id)
    out: dict[str, PostOut] = {}
    site_url = services().settings.public_site_url

    def size(post: Post) -> int:
        # The page's bound counts the originals: a variant's text is of the same order.
        out[post.id] = _post_out(post, site_url=site_url)
        return response_bytes(out[post.id].model_dump(mode="json"))

    posts, next_cursor = services().feed.page(
        id,
        limit,
        cursor=cursor,
        topic=topic,
        country=country,
        language=language,
        size=size,
        max_bytes=MAX_PAGE_BYTES,
    )
    chosen = {p.id: c for p in posts if (c := choose(p, wanted, accept_language)) is not None}
    reader = services().variants
    found = reader.chosen(id, chosen) if chosen and reader is not None else {}
    items = [
        _post_out(p, found[p.id], site_url)
        if p.id in found
        else (out.get(p.id) or _post_out(p, site_url=site_url))
        for p in posts
    ]
    return PostsPage(items=items, next_cursor=next_cursor)


@router.get(
    "/communities/<id>/posts/<post_id>",
    summary="One post",
    responses={
        200: _answer("the post", PostOut),
        **_BAD_LANGUAGE,
        404: _answer("unknown community or post"),
        **_INVALID,
        **_UNAVAILABLE,
    },
)
def get_post(
    id: CommunityId,
    post_id: Annotated[str, Path(min_length=1, max_length=128)],
    lang: Lang = None,
    accept_language: PostLanguages = None,
) -> PostOut:
    wanted = parse_lang(lang) if lang is not None else None
    _known_community(id)
    svc = services()
    found = svc.content.posts(id, [post_id]).get(post_id)
    if found is None:
        raise errors.PostNotFound(id, post_id)
    chosen = choose(found, wanted, accept_language)
    variant = None
    if chosen is not None and svc.variants is not None:
        variant = svc.variants.chosen(id, {post_id: chosen}).get(post_id)
    out = _post_out(found, variant, svc.settings.public_site_url)
    table = services().settings.deliveries_table
    if table:
        from herald.fanout.adapters.dynamo_deliveries import DynamoDeliveryLedger

        stats = DynamoDeliveryLedger(table).stats(id, post_id)
        out.delivery = DeliveryOut.model_validate(stats) if stats is not None else None
    return out


@router.post(
    "/communities/<id>/members",
    summary="Join: a web push subscription and/or a mobile device "
    "(a repeat join: Authorization: Bearer <token>)",
    responses={
        200: _answer(
            "a repeat join presenting the member's token: the same member, keys and subscriptions updated",
            JoinResponse,
        ),
        201: _answer("joined", JoinResponse),
        **_NOT_FOUND,
        409: _answer("the subscription belongs to a member, and the request does not carry its token"),
        413: _answer("body over 16 KiB"),
        415: _answer("a body that is not JSON"),
        **_INVALID,
        **_UNAVAILABLE,
    },
)
def join(
    id: CommunityId, request: JoinRequest, authorization: Authorization = None
) -> Response[dict[str, Any]]:
    _known_community(id)
    result = services().membership.join(id, request, token=bearer_token(authorization))
    body = JoinResponse(member_id=result.member.member_id, token=result.token)
    _metric("MembersJoined" if result.created else "RepeatJoins")
    return Response(
        status_code=201 if result.created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(),
    )


@router.patch(
    "/communities/<id>/members/<member_id>",
    summary="Change a member's preferences (Authorization: Bearer <token>)",
    responses={
        200: _answer("the member's preferences", Preferences),
        **_AUTH,
        413: _answer("body over 16 KiB"),
        415: _answer("a body that is not JSON"),
        **_INVALID,
        **_UNAVAILABLE,
    },
    security=[{"memberToken": []}],
)
def update_preferences(
    id: CommunityId, member_id: MemberId, patch: PreferencesPatch, authorization: Authorization = None
) -> Preferences:
    _known_community(id)
    token = bearer_token(authorization)
    return services().membership.update_preferences(id, member_id, token, patch)


@router.delete(
    "/communities/<id>/members/<member_id>",
    summary="Leave (Authorization: Bearer <token>); leaving again is answered the same",
    responses={204: {"description": "left"}, **_AUTH, **_INVALID, **_UNAVAILABLE},
    security=[{"memberToken": []}],
)
def leave(id: CommunityId, member_id: MemberId, authorization: Authorization = None) -> Response[None]:
    _known_community(id)
    token = bearer_token(authorization)
    if services().membership.leave(id, member_id, token):
        _metric("MembersLeft")
    return Response(status_code=204, body=None)


@router.get(
    "/communities/<id>/join",
    summary="The join link and its QR code (JSON, or ?format=svg / ?format=png)",
    responses={
        200: {
            "description": "JSON with the link and the QR code as SVG and as a PNG data URL; "
            "or the image itself",
            "content": {
                "application/json": {"model": JoinLink},
                "image/svg+xml": {"schema": {"type": "string"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **_NOT_FOUND,
        **_INVALID,
    },
)
def join_link(id: CommunityId, format: Annotated[Literal["json", "svg", "png"], Query()] = "json"):  # type: ignore[no-untyped-def]  # unannotated: Powertools would validate the PNG against one model
    from herald.content import qr

    community = _community(id)
    url = services().settings.join_url(community.id)
    cache_headers = {"Cache-Control": "public, max-age=3600"}
    if format == "svg":
        return Response(200, "image/svg+xml", qr.svg(url, title=url), headers=cache_headers)
    if format == "png":
        return Response(200, "image/png", qr.png(url), headers=cache_headers)
    body = JoinLink(join_url=url, qr_svg=qr.svg(url, title=url), qr_png=qr.png_data_url(url))
    return Response(200, content_types.APPLICATION_JSON, body.model_dump(), headers=cache_headers)


def add_document(app: APIGatewayRestResolver, schemes: dict[str, SecurityScheme]) -> None:
    """``GET /openapi.json`` on ``app``: its OpenAPI document, outside the document itself."""

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_document() -> Response[Any]:
        from aws_lambda_powertools.event_handler.openapi.models import Server

        # The server URL is where the document was fetched from, as Swagger UI's (/docs) is:
        # "/dev" on an execute-api URL, "/" on a custom domain or the local cloud's root.
        servers = [Server(url=_base_path(app.current_event.request_context))]
        return Response(
            200,
            content_types.APPLICATION_JSON,
            app.get_openapi_json_schema(
                title=TITLE, version=VERSION, security_schemes=schemes, servers=servers
            ),
        )
