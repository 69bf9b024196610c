"""Environment of the fan-out planner and the push sender (names as in template.yaml), validated."""

from __future__ import annotations

from pydantic import Field

from herald.content.limits import SQS_MAX_DELAY_S
from herald.core.settings import Settings
from herald.fanout.rules import CHECKPOINT_EVERY
from herald.members.endpoints import EndpointSettings


class PlannerSettings(Settings):
    """The fan-out planner's environment."""

    content_table: str = Field(min_length=1)
    members_table: str = Field(min_length=1)
    deliveries_table: str = Field(min_length=1)
    planner_queue_url: str = Field(min_length=1)
    push_job_queue_url: str = Field(min_length=1)
    public_site_url: str = "https://herald.example"
    member_counter_shards: int = Field(default=32, ge=1, le=1000)
    planner_page_size: int = Field(default=1000, ge=1, le=5000)
    members_per_job: int = Field(default=100, ge=1, le=500)
    max_delay_seconds: int = Field(default=SQS_MAX_DELAY_S, ge=0, le=SQS_MAX_DELAY_S)


class SenderSettings(EndpointSettings):
    """``ALLOW_LOOPBACK_PUSH`` and ``PUSH_ALLOWED_PORTS`` as :class:`EndpointSettings` reads them (the
    policy a join checked, checked again at send)."""

    members_table: str = Field(min_length=1)
    deliveries_table: str = Field(min_length=1)
    push_job_queue_url: str = Field(min_length=1)
    vapid_key_parameter: str = Field(min_length=1)
    vapid_subject: str = Field(default="mailto:ops@herald.example", pattern=r"^(mailto:|https:)\S+$")
    delivery_lease_seconds: float = Field(default=60.0, gt=0, le=900)
    max_push_attempts: int = Field(default=5, ge=1, le=20)
    push_ttl_seconds: int = Field(default=86400, ge=0, le=2419200)
    #: Threads for the pushes of channels that block (SNS mobile push) and for pruning.
    sender_threads: int = Field(default=8, ge=1, le=256)
    #: Web pushes in flight at once on the sender's one thread (unset: ``SENDER_THREADS``).
    sender_in_flight: int | None = Field(default=None, ge=1, le=500)
    #: Members pushed between two checkpoints of a job: the most a sender that dies repeats.
    push_checkpoint_every: int = Field(default=CHECKPOINT_EVERY, ge=1, le=500)
    max_delay_seconds: int = Field(default=SQS_MAX_DELAY_S, ge=0, le=SQS_MAX_DELAY_S)

    @property
    def in_flight(self) -> int:
        """How many pushes a sender keeps going at once: ``SENDER_IN_FLIGHT``, else ``SENDER_THREADS``."""
        return self.sender_in_flight or self.sender_threads
