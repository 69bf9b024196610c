"""The ingest function's configuration, read from the environment once, validated by pydantic."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from herald.ingest.parsing import IngestLimits


class IngestSettings(BaseModel):
    """Environment of the ingest function (names as in template.yaml)."""

    model_config = ConfigDict(frozen=True)

    content_table: str = Field(min_length=1)
    uploads_bucket: str | None = None
    max_post_bytes: int = Field(default=IngestLimits().max_post_bytes, gt=0)
    max_export_bytes: int = Field(default=IngestLimits().max_export_bytes, gt=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        env = os.environ if environ is None else environ
        return cls.model_validate(
            {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        )

    @property
    def limits(self) -> IngestLimits:
        return IngestLimits(max_post_bytes=self.max_post_bytes, max_export_bytes=self.max_export_bytes)
