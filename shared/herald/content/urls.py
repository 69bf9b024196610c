"""Where things are on the public site and the API: the one place their URLs are built.

The site holds one folder per community (``<site>/<community>/``), with a page per post
(``posts/<id>/``); a community's join link is ``<site>/<community>/join`` (what the API gives and
the QR code holds). Path segments are percent-encoded whole (``quote(..., safe="")``).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

__all__ = [
    "community_api_url",
    "community_url",
    "join_url",
    "language_path",
    "members_api_url",
    "post_path",
    "post_url",
    "site_origin",
    "site_root",
]


def _segment(value: str) -> str:
    return quote(value, safe="")


def site_root(site_url: str) -> str:
    """The public site's URL without a trailing slash."""
    return site_url.rstrip("/")


def site_origin(site_url: str) -> str:
    """The scheme and host of the public site (the one origin the API's CORS admits)."""
    parts = urlsplit(site_url)
    return f"{parts.scheme}://{parts.netloc}"


def community_url(site_url: str, community: str) -> str:
    """The community's folder on the site, where its pages are published: ``<site>/<community>/``."""
    return f"{site_root(site_url)}/{_segment(community)}/"


def language_path(lang: str | None) -> str:
    """A language's folder relative to a community's: ``<lang>/`` (None: the community's default
    language, at the community's root: ``""``)."""
    return f"{_segment(lang)}/" if lang else ""


def post_path(post_id: str, lang: str | None = None) -> str:
    """A post's page relative to its community's folder: ``posts/<id>/``, or its ``lang`` variant's
    ``<lang>/posts/<id>/``."""
    return f"{language_path(lang)}posts/{_segment(post_id)}/"


def post_url(site_url: str, community: str, post_id: str, lang: str | None = None) -> str:
    """The post's page on the public site: ``<site>/<community>/posts/<id>/``; a language variant's
    ``<site>/<community>/<lang>/posts/<id>/``."""
    return community_url(site_url, community) + post_path(post_id, lang)


def join_url(site_url: str, community: str) -> str:
    """The join link (as the API gives it, as the QR code holds it): ``<site>/<community>/join``."""
    return f"{site_root(site_url)}/{_segment(community)}/join"


def community_api_url(api_url: str, community: str) -> str:
    """The API's community resource: ``<api>/communities/<community>``."""
    return f"{api_url.rstrip('/')}/communities/{_segment(community)}"


def members_api_url(api_url: str, community: str) -> str:
    """Where a member joins: ``<api>/communities/<community>/members``."""
    return community_api_url(api_url, community) + "/members"
