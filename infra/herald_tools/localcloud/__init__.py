"""Herald's local cloud: moto's server, the template's resources and Lambda's part, on one machine.

See docs/local-cloud.md.
"""

from .cloud import DEFAULT_TEMPLATE, LocalCloud
from .functions import FunctionWorker, InvocationResult, LogSink
from .provision import EventSourceSpec, FunctionSpec, PhysicalResource, Resources, provision
from .server import MotoServer, free_port
from .template import ACCOUNT_ID, REGION, STACK_NAME, Resolver, Template, TemplateError

__all__ = [
    "ACCOUNT_ID",
    "DEFAULT_TEMPLATE",
    "REGION",
    "STACK_NAME",
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
    "Template",
    "TemplateError",
    "free_port",
    "provision",
]
