"""Herald's local cloud: moto's server, the template's resources and Lambda's part, on one machine.

See docs/local-cloud.md.
"""

from .apigateway import ApiGateway, ApiRequest, ApiResponse, Router
from .cloud import DEFAULT_TEMPLATE, LocalCloud
from .functions import FunctionWorker, InvocationResult, LogSink, WorkerPool
from .provision import (
    ApiSpec,
    EventSourceSpec,
    FunctionSpec,
    PhysicalResource,
    Resources,
    RouteSpec,
    provision,
)
from .server import MotoServer, free_port
from .template import ACCOUNT_ID, REGION, STACK_NAME, Resolver, Template, TemplateError

__all__ = [
    "ACCOUNT_ID",
    "DEFAULT_TEMPLATE",
    "REGION",
    "STACK_NAME",
    "ApiGateway",
    "ApiRequest",
    "ApiResponse",
    "ApiSpec",
    "EventSourceSpec",
    "FunctionSpec",
    "FunctionWorker",
    "InvocationResult",
    "LocalCloud",
    "LogSink",
    "MotoServer",
    "PhysicalResource",
    "Resolver",
    "Resources",
    "RouteSpec",
    "Router",
    "Template",
    "TemplateError",
    "WorkerPool",
    "free_port",
    "provision",
]
