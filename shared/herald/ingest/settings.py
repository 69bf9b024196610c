"""The ingest function's configuration, read from the environment once
(:class:`herald.core.settings.Settings`)."""

from __future__ import annotations

from pydantic import Field

from herald.core.settings import Settings
from herald.ingest.parsing import IngestLimits


class IngestSettings(Settings):
    """Environment of the ingest function (names as in template.yaml)."""

    content_table: str = Field(min_length=1)
    uploads_bucket: str | None = None
    max_post_bytes: int = Field(default=IngestLimits().max_post_bytes, gt=0)
    max_export_bytes: int = Field(default=IngestLimits().max_export_bytes, gt=0)
    #: The ingest queue: where ingest sends itself the check of a variant waiting for its original.
    ingest_queue_url: str | None = None
    #: How long a variant waits for its original before it is rejected (seconds).
    variant_wait_s: int = Field(default=900, ge=0, le=86_400)

    @property
    def limits(self) -> IngestLimits:
        return IngestLimits(max_post_bytes=self.max_post_bytes, max_export_bytes=self.max_export_bytes)
