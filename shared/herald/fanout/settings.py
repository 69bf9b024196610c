"""Environment of the fan-out planner and the push sender (names as in template.yaml), validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _from_env(cls: type[BaseModel], environ: Mapping[str, str] | None) -> Any:
    env = os.environ if environ is None else environ
    return cls.model_validate({name: env[name.upper()] for name in cls.model_fields if name.upper() in env})


class PlannerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    content_table: str = Field(min_length=1)
    members_table: str = Field(min_length=1)
    deliveries_table: str = Field(min_length=1)
    planner_queue_url: str = Field(min_length=1)
    push_job_queue_url: str = Field(min_length=1)
    public_site_url: str = "https://herald.example"
    member_counter_shards: int = Field(default=32, ge=1, le=1000)
    planner_page_size: int = Field(default=1000, ge=1, le=5000)
    members_per_job: int = Field(default=100, ge=1, le=500)
    max_delay_seconds: int = Field(default=900, ge=0, le=900)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PlannerSettings:
        settings: PlannerSettings = _from_env(cls, environ)
        return settings


class SenderSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    members_table: str = Field(min_length=1)
    deliveries_table: str = Field(min_length=1)
    push_job_queue_url: str = Field(min_length=1)
    vapid_key_parameter: str = Field(min_length=1)
    vapid_subject: str = Field(default="mailto:ops@herald.example", pattern=r"^(mailto:|https:)\S+$")
    delivery_lease_seconds: float = Field(default=60.0, gt=0, le=900)
    max_push_attempts: int = Field(default=5, ge=1, le=20)
    push_ttl_seconds: int = Field(default=86400, ge=0, le=2419200)
    sender_threads: int = Field(default=8, ge=1, le=64)
    max_delay_seconds: int = Field(default=900, ge=0, le=900)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SenderSettings:
        settings: SenderSettings = _from_env(cls, environ)
        return settings
