"""Herald's public site: a community's page, its posts' pages, Atom and JSON feeds (pure rendering)."""

from herald.site.render import (
    CACHE_ASSET,
    CACHE_LIVE,
    CACHE_PAGE,
    CommunityView,
    Layout,
    SiteChanges,
    SiteFile,
    SiteRenderer,
    markdown_html,
    ordered,
    post_path,
    text_html,
)

__all__ = [
    "CACHE_ASSET",
    "CACHE_LIVE",
    "CACHE_PAGE",
    "CommunityView",
    "Layout",
    "SiteChanges",
    "SiteFile",
    "SiteRenderer",
    "markdown_html",
    "ordered",
    "post_path",
    "text_html",
]
