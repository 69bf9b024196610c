"""The functions' metrics: Powertools' ``Metrics``, except that an invocation that added no metric
publishes nothing and says nothing.

Powertools' ``log_metrics`` flushes at the end of every invocation and, when nothing was added,
warns "No application metrics to publish" (a ``UserWarning``, in the function's log once per
environment and in every test's output). Most of Herald's paths add none on purpose (an S3 test
event, a change the publisher ignores, a member count with nothing to write), so here an empty
flush is silent and does nothing else, as Powertools' does besides warning. Everything else is
Powertools' own: metrics added are flushed as before, ``raise_on_empty_metrics=True`` still
raises, and any other warning (a timestamp CloudWatch would drop, say) still shows.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import Metrics as PowertoolsMetrics
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

__all__ = ["Metrics"]


class _Provider(AmazonCloudWatchEMFProvider):
    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if not self.metric_set and not raise_on_empty_metrics:
            return  # nothing to publish: Powertools would only warn
        super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)


class Metrics(PowertoolsMetrics):
    """``Metrics()`` as Powertools' (service and namespace from ``POWERTOOLS_*``), quiet when empty."""

    def __init__(
        self,
        service: str | None = None,
        namespace: str | None = None,
        provider: AmazonCloudWatchEMFProvider | None = None,
        function_name: str | None = None,
    ) -> None:
        super().__init__(service=service, namespace=namespace, provider=provider, function_name=function_name)
        if provider is None:
            # The same provider Powertools builds (over the same shared metric and dimension
            # sets), of the class above.
            self.provider = _Provider(
                namespace=namespace,
                service=service,
                metric_set=self.metric_set,
                dimension_set=self.dimension_set,
                metadata_set=self.metadata_set,
                default_dimensions=self._default_dimensions,
                function_name=function_name,
            )
