"""The one place domain errors become HTTP answers."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from herald.api.variants import UnsupportedLanguage
from herald.core.errors import NotFound, TransientError
from herald.members.rules import (
    AlreadyJoined,
    CommunityNotFound,
    Forbidden,
    InvalidRequest,
    MemberGone,
    MissingToken,
)


class PostNotFound(NotFound):
    def __init__(self, community: str, post_id: str) -> None:
        super().__init__(f"post not found: {post_id}")
        self.community = community
        self.post_id = post_id


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Powertools' 422 shape, plus a message and the dotted field name for people."""
    detail = []
    for error in errors:
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        detail.append(
            {
                "loc": loc,
                "field": ".".join(str(p) for p in loc[1:]) or str(loc[0] if loc else ""),
                "type": str(error.get("type", "value_error")),
                "msg": _message(error),
            }
        )
    return {"statusCode": HTTPStatus.UNPROCESSABLE_ENTITY.value, "detail": detail}


def _invalid(exc: RequestValidationError) -> Response:
    return _json(422, validation_body(list(exc.errors())))


def _rule(exc: InvalidRequest) -> Response:
    return _json(422, validation_body([{"loc": exc.loc, "type": exc.kind, "msg": exc.message}]))


def _no_community(exc: CommunityNotFound) -> Response:
    return _json(404, {"error": "community not found", "community": exc.community})


def _no_post(exc: PostNotFound) -> Response:
    return _json(404, {"error": "post not found", "community": exc.community, "post_id": exc.post_id})


def _bad_language(exc: UnsupportedLanguage) -> Response:
    return _json(400, {"error": str(exc)})


def _no_token(exc: MissingToken) -> Response:
    return _json(
        401,
        {"error": "a bearer token is required"},
        {"WWW-Authenticate": 'Bearer realm="herald"'},
    )


def _forbidden(exc: Forbidden) -> Response:
    return _json(403, {"error": "forbidden"})


def _already(exc: AlreadyJoined) -> Response:
    # Nothing about the member: not its id, not its token, not when it joined.
    return _json(
        409,
        {
            "error": "this subscription already belongs to a member: a repeat join must present "
            "the member's token (Authorization: Bearer); without it, subscribe again for a new membership"
        },
    )


def _gone(exc: MemberGone) -> Response:
    return _json(404, {"error": "membership not found"})


def _transient(exc: TransientError) -> Response:
    app_logger().warning("a dependency failed", extra={"error": str(exc)})
    return _json(503, {"error": "temporarily unavailable, try again"}, {"Retry-After": "1"})


#: Each error type and its answer (Powertools picks the handler of the nearest type in the error's MRO).
HANDLERS: tuple[tuple[type[Exception], Callable[[Any], Response]], ...] = (
    (RequestValidationError, _invalid),
    (InvalidRequest, _rule),
    (CommunityNotFound, _no_community),
    (PostNotFound, _no_post),
    (UnsupportedLanguage, _bad_language),
    (MissingToken, _no_token),
    (Forbidden, _forbidden),
    (AlreadyJoined, _already),
    (MemberGone, _gone),
    (TransientError, _transient),
)


def register(app: APIGatewayRestResolver) -> None:
    @app.not_found
    def _no_route(exc: Exception) -> Response:
        # API Gateway routed it here, but the path does not parse (a character Powertools' path
        # parameters do not take): nothing by that name exists.
        return _json(404, {"error": "not found"})

    for kind, handler in HANDLERS:
        app.exception_handler(kind)(handler)


def too_large(limit: int) -> dict[str, Any]:
    return {"error": "request body too large", "max_bytes": limit}


def app_logger() -> Any:
    from aws_lambda_powertools import Logger

    return Logger(service="herald")
