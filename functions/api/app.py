"""API function: Herald's HTTP API behind API Gateway (REST).

Thin on purpose: the routes, validation and error mapping are in ``herald.api``; clients, the
token secret and the settings are made on the first request and reused while the environment lives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from herald.api.app import handle
from herald.core.metrics import Metrics
from herald.core.observability import traced

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)


#: The entry point template.yaml names; traced only when the stack turns tracing on.
handler = traced(_handler)
