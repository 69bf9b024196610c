"""The API function's configuration, read from the environment once
(:class:`herald.core.settings.Settings`)."""

from __future__ import annotations

from pydantic import Field

from herald.content import urls
from herald.members.endpoints import EndpointSettings


class ApiSettings(EndpointSettings):
    """Environment of the API function (names as in template.yaml); ``ALLOW_LOOPBACK_PUSH`` and
    ``PUSH_ALLOWED_PORTS`` as :class:`EndpointSettings` reads them."""

    content_table: str = Field(min_length=1)
    members_table: str = Field(min_length=1)
    member_token_secret_arn: str = Field(min_length=1)
    public_site_url: str = Field(default="https://herald.example", pattern=r"^https?://[^/\s]+(/\S*)?$")
    fcm_platform_application_arn: str = ""
    apns_platform_application_arn: str = ""
    member_counter_shards: int = Field(default=32, ge=1, le=1000)
    max_body_bytes: int = Field(default=16 * 1024, gt=0)
    deliveries_table: str = ""

    @property
    def site_url(self) -> str:
        return urls.site_root(self.public_site_url)

    @property
    def site_origin(self) -> str:
        """The scheme and host of the public site: the one origin CORS admits."""
        return urls.site_origin(self.public_site_url)

    def join_url(self, community: str) -> str:
        return urls.join_url(self.public_site_url, community)

    @property
    def platform_applications(self) -> dict[str, str]:
        return {"fcm": self.fcm_platform_application_arn, "apns": self.apns_platform_application_arn}
