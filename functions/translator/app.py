"""Translator function: the content table's stream to machine variants of posts.

Each record of a post item (INSERT or MODIFY: the event source's ``FilterCriteria``) becomes a
typed change (``herald.content.adapters.dynamo_stream``), and ``herald.translation.service``
makes the machine variants its community's settings ask for: one Amazon Translate call per post
and language, stored with ``put_machine_variant`` (never over a human variant). A record whose
translation failed in a way that may pass (throttling, the service unavailable) is reported as a
batch item failure, so the stream gives it again; what is stored by then is not asked again. A
refusal (a language pair Translate does not support, ...) is recorded and not retried.

Metrics per batch: ``MachineTranslationCalls`` (translator calls), ``MachineVariantsStored``,
``MachineTranslationsRefused``; ``MachineTranslationCharacters`` (characters sent: what Amazon
Translate charges for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from herald.core.metrics import Metrics
from herald.core.observability import traced
from herald.core.runtime import Lazy

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from herald.translation.ports import Translator, VariantStore

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class CountingTranslator:
    """The translator, with the characters it was sent counted (Amazon Translate's unit of price)."""

    def __init__(self, inner: Translator) -> None:
        self.inner = inner
        self.characters = 0

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        self.characters += len(text)
        return self.inner.translate(text, source_lang, target_lang)


def default_parts() -> tuple[VariantStore, Translator]:
    from herald.translation.adapters.amazon_translate import AmazonTranslator
    from herald.translation.adapters.dynamo_variants import DynamoVariantStore
    from herald.translation.settings import TranslatorSettings

    settings = TranslatorSettings.from_env()
    return DynamoVariantStore(settings.content_table), AmazonTranslator()


#: The store and the translator, built on the first batch; ``configure(factory)`` swaps them (tests).
parts: Lazy[tuple[VariantStore, Translator]] = Lazy(default_parts)
configure = parts.configure


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def _handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    from herald.content.adapters.dynamo_stream import content_change
    from herald.translation.service import MachineTranslation

    store, inner = parts()
    translator = CountingTranslator(inner)
    service = MachineTranslation(store, translator)

    def record_handler(record: DynamoDBRecord) -> None:
        change = content_change(record)
        if change is not None:
            service.handle(change)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    report = service.report
    metrics.add_metric("MachineTranslationCalls", MetricUnit.Count, report.calls)
    metrics.add_metric("MachineVariantsStored", MetricUnit.Count, len(report.stored))
    metrics.add_metric("MachineTranslationsRefused", MetricUnit.Count, len(report.refused))
    metrics.add_metric("MachineTranslationCharacters", MetricUnit.Count, translator.characters)
    logger.info(
        "translated",
        extra={
            "records": len(event.get("Records") or []),
            "looked_at": report.looked_at,
            "passed_over": report.passed_over,
            "calls": report.calls,
            "characters": translator.characters,
            "stored": [f"{c}/{p}/{lang}" for c, p, lang in report.stored][:50],
            "refused": [f"{c}/{p}/{lang}: {code}" for c, p, lang, code in report.refused][:50],
            "superseded": report.superseded,
            "separator_lost": report.separator_lost,
            "failed": len(response.get("batchItemFailures", [])),
        },
    )
    return response


#: The entry point template.yaml names; traced only when the stack turns tracing on.
handler = traced(_handler)
