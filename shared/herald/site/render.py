"""The public site of one community: its page, one page per post, archive pages, feeds and assets.

Pure: no I/O but reading the package's own templates and static files, no clock. The same posts
give the same bytes, so a publisher uploads only what really changed. Every string a post or a
profile holds goes through Jinja2's autoescape. A post's body is the HTML of its upload format
(:mod:`herald.content.formats`), which escapes the text itself: a plain-text post's links are built
from its extracted ``links`` (http/https only, checked again), never from the text; a Markdown
post's from its own links, checked the same way (``mailto:`` too).

Layout of the site (paths relative to ``base_url``)::

    index.html                 the community page: profile, QR code, join button, pinned + newest posts
    page/<n>/index.html        archive pages, numbered from the OLDEST: page 1 holds the first 50 posts
    posts/<id>/index.html      one page per post
    join/index.html            the join page: QR code and button
    feed.atom, feed.json       the newest posts (Atom 1.0, JSON Feed 1.1)
    qr.svg, site.css, join.js, sw.js
    <lang>/index.html          per language a post has a variant in: the community page, each post
    <lang>/feed.atom, .json    in its <lang> variant when it has one, else in its original
    <lang>/posts/<id>/         a post's <lang> variant (the original stays at posts/<id>/)

Archive pages are numbered from the oldest post so that a new post changes only the newest archive
page: page ``n`` always holds the unpinned posts ranked ``50(n-1)+1 … 50n`` in publication order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict

from herald.content import counts, formats, qr, urls
from herald.content.formats import base, markdown
from herald.content.formats.base import safe_href
from herald.content.formats.markdown import markdown_html as markdown_html
from herald.content.formats.text import text_html as text_html
from herald.content.models import Community, Post, Variant, VariantOrigin, VariantSummary
from herald.core import locales
from herald.site import feeds

if TYPE_CHECKING:
    from jinja2 import Environment, Template

PAGE_SIZE = 50
FEED_SIZE = 50
#: Languages written right to left: their posts get ``dir="rtl"``, their pages ``<html dir="rtl">``.
RTL_LANGUAGES = frozenset({"ar", "fa", "ur", "he", "ps", "ckb", "yi", "dv", "sd", "ug"})
#: Schemes a link in a plain-text post may have; a Markdown post may also link ``mailto:``.
LINK_SCHEMES = base.LINK_SCHEMES
MARKDOWN_SCHEMES = markdown.MARKDOWN_SCHEMES
LINK_REL = base.LINK_REL

HTML = "text/html; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
JSON_FEED = "application/feed+json; charset=utf-8"
CSS = "text/css; charset=utf-8"
JAVASCRIPT = "text/javascript; charset=utf-8"
SVG = "image/svg+xml"

#: The community page, the join page and the feeds change with every post and member count.
CACHE_LIVE = "public, max-age=60, stale-while-revalidate=300"
#: Post pages and archive pages change rarely (an edit, a delete).
CACHE_PAGE = "public, max-age=300"
#: Stylesheet, script, QR code.
CACHE_ASSET = "public, max-age=86400"

_HERE = Path(__file__).resolve().parent
STATIC_FILES = {"site.css": CSS, "join.js": JAVASCRIPT, "sw.js": JAVASCRIPT}


# ----------------------------------------------------------------------------- public types


class CommunityView(BaseModel):
    """What the site shows of a community."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str | None = None
    verified: bool = False
    members: int = 0
    posts: int = 0
    created_year: int | None = None
    join_url: str | None = None

    @classmethod
    def from_community(cls, community: Community, join_url: str | None = None) -> CommunityView:
        return cls(
            id=community.id,
            name=community.name,
            description=community.description,
            verified=community.verified,
            members=community.members,
            posts=community.posts,
            created_year=community.created_year,
            join_url=join_url,
        )


@dataclass(frozen=True, slots=True)
class SiteFile:
    """One object of the site, with the headers it is served with."""

    path: str
    body: bytes
    content_type: str
    cache_control: str

    @property
    def md5(self) -> str:
        """Hex MD5 of the body: what S3 reports as the ETag of a single-part upload."""
        return hashlib.md5(self.body, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class SiteChanges:
    """What to upload and what to delete after a change."""

    writes: list[SiteFile] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.writes]


# ----------------------------------------------------------------------------- strings

_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "members": "Members",
        "created": "Created In {year}",
        "verified": "Verified community",
        "join": "Join",
        "scan": "Scan QR code to join",
        "qr_alt": "QR code to join {name}",
        "pinned": "Pinned",
        "older": "Older posts",
        "newer": "Newer posts",
        "feeds": "Feeds",
        "all_posts": "All posts",
        "open_link": "Open the join link",
        "joined": "You joined. Welcome!",
        "join_failed": "Joining did not work. Try again, or scan the QR code.",
        "no_push": "This browser cannot subscribe here: scan the QR code or open the join link.",
        "page": "Page {n}",
        "posts": "Posts",
        "pages": "Pages",
        "skip": "Skip to the posts",
        "machine": "Machine translation",
        "languages": "Languages",
        "original": "Original",
    },
    "fr": {
        "members": "Membres",
        "created": "Créée en {year}",
        "verified": "Communauté vérifiée",
        "join": "Rejoindre",
        "scan": "Scannez le code QR pour rejoindre",
        "qr_alt": "Code QR pour rejoindre {name}",
        "pinned": "Épinglé",
        "older": "Messages plus anciens",
        "newer": "Messages plus récents",
        "feeds": "Flux",
        "all_posts": "Tous les messages",
        "open_link": "Ouvrir le lien d’invitation",
        "joined": "Vous avez rejoint la communauté. Bienvenue !",
        "join_failed": "L’inscription n’a pas fonctionné. Réessayez, ou scannez le code QR.",
        "no_push": "Ce navigateur ne peut pas s’abonner ici : scannez le code QR ou ouvrez le lien.",
        "page": "Page {n}",
        "posts": "Messages",
        "pages": "Pages",
        "skip": "Aller aux messages",
        "machine": "Traduction automatique",
        "languages": "Langues",
        "original": "Original",
    },
    "es": {
        "members": "Miembros",
        "created": "Creada en {year}",
        "verified": "Comunidad verificada",
        "join": "Unirse",
        "scan": "Escanea el código QR para unirte",
        "qr_alt": "Código QR para unirse a {name}",
        "pinned": "Fijado",
        "older": "Publicaciones anteriores",
        "newer": "Publicaciones más recientes",
        "feeds": "Feeds",
        "all_posts": "Todas las publicaciones",
        "open_link": "Abrir el enlace para unirse",
        "joined": "Te uniste. ¡Bienvenida, bienvenido!",
        "join_failed": "No se pudo completar. Inténtalo de nuevo o escanea el código QR.",
        "no_push": "Este navegador no puede suscribirse aquí: escanea el código QR o abre el enlace.",
        "page": "Página {n}",
        "posts": "Publicaciones",
        "pages": "Páginas",
        "skip": "Ir a las publicaciones",
        "machine": "Traducción automática",
        "languages": "Idiomas",
        "original": "Original",
    },
    "ar": {
        "members": "عضو",
        "created": "أُنشئت في {year}",
        "verified": "مجتمع موثّق",
        "join": "انضم",
        "scan": "امسح رمز QR للانضمام",
        "qr_alt": "رمز QR للانضمام إلى {name}",
        "pinned": "مثبّت",
        "older": "منشورات أقدم",
        "newer": "منشورات أحدث",
        "feeds": "الخلاصات",
        "all_posts": "كل المنشورات",
        "open_link": "افتح رابط الانضمام",
        "joined": "انضممت. أهلاً بك!",
        "join_failed": "لم ينجح الانضمام. حاول مرة أخرى أو امسح رمز QR.",
        "no_push": "لا يمكن لهذا المتصفح الاشتراك هنا: امسح رمز QR أو افتح رابط الانضمام.",
        "page": "صفحة {n}",
        "posts": "المنشورات",
        "pages": "الصفحات",
        "skip": "انتقل إلى المنشورات",
        "machine": "ترجمة آلية",
        "languages": "اللغات",
        "original": "الأصل",
    },
}


# ----------------------------------------------------------------------------- languages


def direction(lang: str | None) -> Literal["rtl", "ltr"]:
    """The writing direction of a language code (``ar``, ``fa-af``, ``ckb``): ``rtl`` for the
    languages of :data:`RTL_LANGUAGES` (by their first subtag), ``ltr`` for any other or none."""
    if not lang:
        return "ltr"
    primary = lang.strip().lower().replace("_", "-").split("-", 1)[0]
    return "rtl" if primary in RTL_LANGUAGES else "ltr"


@lru_cache(maxsize=256)
def language_name(lang: str) -> str:
    """A language's name in that language (``Français``, ``العربية``) when HeraldLayer ships its
    locale data (:data:`herald.core.locales.LANGUAGES`), else the code itself (``pt-br``)."""
    from babel import Locale, UnknownLocaleError

    if not locales.shipped(lang):
        return lang
    try:
        locale = Locale.parse(lang.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return lang
    name = locale.get_display_name(locale) or lang
    return name[:1].upper() + name[1:]


def post_languages(post: Post) -> list[str]:
    """The languages a post's variants are in (not the original's), sorted."""
    return sorted(post.variants)


def variant_pages_change(old: Post | None, new: Post) -> bool:
    """Whether a change from ``old`` to ``new`` can change the pages of ``new``'s variants: what a
    variant page shows of its post (its languages and their titles, the date, the pin, the tags,
    the original's language) or a new post with variants. A caller reads the variant items
    (``VAR#<id>#…``) only then."""
    if not new.variants:
        return False
    if old is None:
        return True
    return _variant_page_inputs(old) != _variant_page_inputs(new)


def _variant_page_inputs(post: Post) -> tuple[Any, ...]:
    return (
        tuple(sorted(post.variants.items())),
        post.language,
        published_at(post),
        post.pinned,
        tuple(post.tags),
    )


@dataclass(frozen=True, slots=True)
class Chrome:
    """The language of a page's own words (buttons, labels, dates): a shipped locale."""

    lang: str  # BCP 47, as in ``lang=""``
    dir: str
    strings: Mapping[str, str]
    locale: Any  # babel.Locale

    @classmethod
    def of(cls, locale: str) -> Chrome:
        from babel import Locale

        parsed = Locale.parse(locale.replace("-", "_"))
        return cls(
            lang=str(parsed).replace("_", "-"),
            dir="rtl" if parsed.character_order == "right-to-left" else "ltr",
            strings={**_STRINGS["en"], **_STRINGS.get(parsed.language, {})},
            locale=parsed,
        )


@cache
def _chrome(locale: str) -> Chrome:
    return Chrome.of(locale)


# ----------------------------------------------------------------------------- text to HTML

# A post's body is its upload format's HTML (herald.content.formats): ``text_html`` for plain text
# and JSON, ``markdown_html`` for Markdown; ``safe_href`` also checks the community's join link.

# ----------------------------------------------------------------------------- ordering


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def published_at(post: Post) -> datetime:
    return _utc(post.publish_at or post.created_at)


def _chrono_key(post: Post) -> tuple[datetime, str]:
    return published_at(post), post.id


def ordered(posts: Iterable[Post]) -> list[Post]:
    """Pinned first, then newest first (ties by id): the order of ``community_posts()``."""
    return sorted(posts, key=lambda p: (p.pinned, *_chrono_key(p)), reverse=True)


class OutsideWindow(Exception):
    """A change would rewrite an archive page before the posts a windowed :class:`Layout` holds (a
    post moved, deleted or added before them): the caller renders again from every post."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Which post goes on which page.

    A windowed layout holds only the newest archive pages: ``offset`` full pages precede its
    ``buckets`` (page ``offset + 1`` is its first), so it is built from the unpinned posts ranked
    after ``offset * page_size`` in publication order, and from every pinned post.
    """

    pinned: tuple[Post, ...]  # newest first
    buckets: tuple[tuple[Post, ...], ...]  # archive pages offset+1..n, each oldest first
    offset: int = 0  # full archive pages before the first bucket, not held

    @classmethod
    def of(cls, posts: Iterable[Post], page_size: int = PAGE_SIZE, offset: int = 0) -> Layout:
        unique = {p.id: p for p in posts}.values()
        pinned = tuple(sorted((p for p in unique if p.pinned), key=_chrono_key, reverse=True))
        chrono = sorted((p for p in unique if not p.pinned), key=_chrono_key)
        buckets = tuple(tuple(chrono[i : i + page_size]) for i in range(0, len(chrono), page_size))
        return cls(pinned, buckets, offset)

    @property
    def pages(self) -> int:
        return self.offset + len(self.buckets)

    def bucket(self, page: int) -> tuple[Post, ...]:
        """The posts of archive page ``page`` (1-based; a held page), oldest first."""
        if page <= self.offset:
            raise OutsideWindow(f"archive page {page} is before the {self.offset} pages not held")
        return self.buckets[page - 1 - self.offset]

    def index_buckets(self, page_size: int = PAGE_SIZE) -> list[int]:
        """Archive pages (1-based) the community page shows: the newest, and the one before if short."""
        if not self.pages:
            return []
        shown = [self.pages]
        if len(self.bucket(self.pages)) < page_size and self.pages > 1:
            shown.append(self.pages - 1)
        return shown

    def newest(self, count: int) -> list[Post]:
        """The ``count`` newest posts, pinned or not, newest first (for the feeds)."""
        out: list[Post] = []
        for bucket in reversed(self.buckets):
            out.extend(reversed(bucket))
            if len(out) >= count:
                break
        if len(out) < count and self.offset:
            raise OutsideWindow(f"the {count} newest posts are not all held")
        merged = sorted([*self.pinned, *out], key=_chrono_key, reverse=True)
        return merged[:count]

    def page_signature(self, page: int) -> tuple[tuple[str, int, str], ...]:
        return tuple((p.id, p.version, p.content_hash) for p in self.bucket(page))


# ----------------------------------------------------------------------------- templates


@cache
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def _template(name: str) -> Template:
    return _environment().get_template(name)


@cache
def _static(name: str) -> bytes:
    return (_HERE / "static" / name).read_bytes()


@lru_cache(maxsize=64)
def _qr_svg(url: str) -> bytes:
    return qr.svg(url, classes=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class PostView:
    """A post, ready for the templates and the feeds: its original, or one of its language variants
    (``variant``), in full (a post page) or by the summary the post item carries (listings)."""

    id: str
    href: str  # relative to the community's folder
    url: str  # absolute
    title: str
    body: Markup
    text: str
    excerpt: str
    lang: str | None
    dir: str
    published: datetime
    updated: datetime
    published_display: str
    pinned: bool
    tags: tuple[str, ...]
    feed_tags: tuple[str, ...]
    variant: str | None = None  # the variant's language; None: the original
    machine: bool = False
    #: The post's language's name, when a page of another language lists it in its original.
    marked: str | None = None

    @property
    def published_iso(self) -> str:
        return feeds.rfc3339(self.published)


@dataclass(frozen=True, slots=True)
class Edition:
    """One language's pages of a community: the root's (``prefix`` empty: each post in the
    community's default language when it has one, else its original) or ``<lang>/``'s."""

    lang: str | None  # the language posts are shown in (their variant), None: their original
    prefix: str  # ``""`` or ``<lang>/``
    chrome: Chrome
    html_lang: str
    html_dir: str

    @property
    def up(self) -> str:
        """From the edition's folder to the community's."""
        return "../" * self.prefix.count("/")


@dataclass(frozen=True, slots=True)
class LanguageLink:
    """One entry of a post page's language switcher, and its ``hreflang`` alternate."""

    lang: str | None  # None: the original, whose language is not known
    label: str
    href: str  # relative to the page
    url: str  # absolute
    current: bool
    machine: bool


def post_path(post_id: str, lang: str | None = None) -> str:
    """``posts/<id>/index.html``, or a variant's ``<lang>/posts/<id>/index.html`` (ids are hex;
    anything else is percent-encoded)."""
    return urls.post_path(post_id, lang) + "index.html"


def language_files(lang: str) -> list[str]:
    """The live files of a language's folder: its community page and feeds."""
    prefix = urls.language_path(lang)
    return [f"{prefix}index.html", f"{prefix}feed.atom", f"{prefix}feed.json"]


# ----------------------------------------------------------------------------- the renderer


class SiteRenderer:
    """Renders one community's site. Configuration only; every call is pure."""

    def __init__(
        self,
        base_url: str,
        api_url: str | None = None,
        locale: str = "en",
        *,
        page_size: int = PAGE_SIZE,
        feed_size: int = FEED_SIZE,
        pretty_urls: bool = True,
        vapid_public_key: str | None = None,
        demo_subscription: Mapping[str, Any] | None = None,
        default_language: str | None = None,
    ) -> None:
        """
        ``base_url`` is where the community's site is published (``https://site.example/harbour-line/``);
        ``api_url`` the Herald API (the join button and its CSP ``connect-src``); ``locale`` a babel
        locale of a language HeraldLayer ships (:data:`herald.core.locales.LANGUAGES`: ``en``,
        ``fr_CA``, ``ar``…; another raises :class:`~herald.core.locales.UnsupportedLocale`). With
        ``pretty_urls`` links end in ``/`` (``posts/<id>/``), otherwise in ``index.html`` (for a bucket
        served without index documents).
        ``demo_subscription`` is a web push subscription the join button sends as is (the local cloud).
        ``default_language`` (the community's setting): the root's community page, archive pages and
        feeds show each post in that language's variant when it has one (its original otherwise).
        """
        if page_size < 1 or feed_size < 1:
            raise ValueError("page_size and feed_size must be positive")
        if not locales.shipped(locale):
            raise locales.UnsupportedLocale(locale)
        self.base_url = base_url.rstrip("/") + "/"
        self.api_url = api_url.rstrip("/") if api_url else None
        self.chrome = _chrome(locale)
        self.locale = self.chrome.locale
        self.page_size = page_size
        self.feed_size = feed_size
        self.pretty_urls = pretty_urls
        self.vapid_public_key = vapid_public_key
        self.demo_subscription = (
            json.dumps(demo_subscription, sort_keys=True, separators=(",", ":"))
            if demo_subscription
            else None
        )
        self.lang = self.chrome.lang
        self.page_dir = self.chrome.dir
        self.strings = self.chrome.strings
        self.default_language = default_language or None
        self.root = Edition(
            lang=self.default_language,
            prefix="",
            chrome=self.chrome,
            html_lang=self.default_language or self.lang,
            html_dir=direction(self.default_language) if self.default_language else self.page_dir,
        )
        self.csp = self._csp()

    def edition(self, lang: str | None) -> Edition:
        """The root's pages (None) or the ``<lang>/`` folder's: their words in ``lang`` when it is a
        shipped locale, else in the site's locale; ``<html lang dir>`` of ``lang``."""
        if lang is None:
            return self.root
        chrome = _chrome(lang) if locales.shipped(lang) else self.chrome
        return Edition(lang, urls.language_path(lang), chrome, lang, direction(lang))

    # -- public API ----------------------------------------------------------------------------

    def render_community(
        self,
        community: CommunityView,
        posts: Iterable[Post],
        variants: Mapping[str, Mapping[str, Variant]] | None = None,
    ) -> dict[str, SiteFile]:
        """The whole site: ``{path: SiteFile}``. ``variants`` holds the variant items of the posts
        (post id -> language -> :class:`Variant`); a variant the post names but ``variants`` lacks
        has no page (its listings use the post's summary of it)."""
        layout = Layout.of(posts, self.page_size)
        views = _Views(self)
        held = [*layout.pinned, *(p for bucket in layout.buckets for p in bucket)]
        languages = sorted({lang for p in held for lang in p.variants})
        files: list[SiteFile] = [
            *self._live_files(community, layout, views, languages),
            *self.assets(community),
        ]
        for page in range(1, layout.pages + 1):
            files.append(self._archive_page(community, layout, page, views))
        for post in held:
            files.append(self._post_file(community, post, None, views))
            files.extend(self._variant_files(community, post, (variants or {}).get(post.id, {}), views))
        return {f.path: f for f in sorted(files, key=lambda f: f.path)}

    def render_post(self, community: CommunityView, post: Post) -> bytes:
        """One post's page (its original)."""
        return self._post_file(community, post, None, _Views(self)).body

    def render_variant(self, community: CommunityView, post: Post, variant: Variant) -> bytes:
        """One variant's page (``<lang>/posts/<id>/``)."""
        return self._post_file(community, post, variant, _Views(self)).body

    def render_changes(
        self,
        community: CommunityView,
        posts: Iterable[Post],
        changed_post_ids: Iterable[str] = (),
        deleted_post_ids: Iterable[str] = (),
        *,
        previous: Mapping[str, Post] | None = None,
        offset: int = 0,
        variants: Mapping[str, Mapping[str, Variant]] | None = None,
        languages: Iterable[str] | None = None,
    ) -> SiteChanges:
        """What a change of some posts rewrites: those posts' pages, the community page, the join
        page, the feeds, and only the archive pages whose posts or links changed.

        ``posts`` are all the community's posts now. ``previous`` holds the stored versions, before
        the change, of the changed and deleted posts (a stream's old images); a changed post missing
        from it is taken as new. Without ``previous`` at all, any change that could move posts between
        archive pages (a delete, an edit of an older post) rewrites every archive page, which is
        always correct. A change of the community's name or join link needs :meth:`render_community`.

        With ``offset``, ``posts`` are only the newest: every pinned post and the unpinned ones ranked
        after ``offset * page_size`` (archive pages ``offset + 1`` on, held whole). Raises
        :class:`OutsideWindow` when the change would rewrite a page before them (a delete, a post
        added, moved or edited before them, the newest pages too few for the feeds).

        Language variants: the pages of a changed post's variants are rewritten when
        :func:`variant_pages_change` says so, from ``variants`` (post id -> language ->
        :class:`Variant`; a ``ValueError`` names a post whose variant items are missing); a variant
        the post no longer has (or a deleted post's) is in ``deletes``. ``languages`` are the
        folders whose community page and feeds are rewritten (default: the languages of ``posts``;
        with ``offset`` 0 the folders of languages only ``previous`` had are in ``deletes``).
        """
        current = list({p.id: p for p in posts}.values())
        by_id = {p.id: p for p in current}
        changed = {pid for pid in changed_post_ids if pid in by_id}
        deleted = {pid for pid in deleted_post_ids if pid not in by_id}
        layout = Layout.of(current, self.page_size, offset)
        if offset and deleted:
            raise OutsideWindow("a deleted post's place is not known in the pages held")
        deletes: list[str] = []
        if languages is None:
            # Every post is here (``offset`` 0) or the pages held are: the languages they have, and a
            # folder whose last variant went is removed (known only from every post).
            languages = {lang for p in current for lang in p.variants}
            if not offset:
                gone = {lang for p in (previous or {}).values() for lang in p.variants} - languages
                deletes.extend(path for lang in sorted(gone) for path in language_files(lang))
        views = _Views(self)
        writes = list(self._live_files(community, layout, views, sorted(set(languages))))
        for pid in sorted(changed):
            post = by_id[pid]
            writes.append(self._post_file(community, post, None, views))
            old = (previous or {}).get(pid)
            if variant_pages_change(old, post):
                if variants is None or pid not in variants:
                    raise ValueError(f"the variant items of post {pid} are needed to render its pages")
                writes.extend(self._variant_files(community, post, variants[pid], views))
            if old is not None:
                deletes.extend(post_path(pid, lang) for lang in old.variants if lang not in post.variants)
        for pid in sorted(deleted):
            deletes.append(post_path(pid))
            old = (previous or {}).get(pid)
            if old is not None:
                deletes.extend(post_path(pid, lang) for lang in old.variants)

        pages, pages_before = self._changed_pages(current, layout, changed, deleted, previous)
        writes.extend(self._archive_page(community, layout, page, views) for page in pages)
        deletes.extend(f"page/{n}/index.html" for n in range(layout.pages + 1, pages_before + 1))
        return SiteChanges(writes=sorted(writes, key=lambda f: f.path), deletes=sorted(deletes))

    def assets(self, community: CommunityView) -> list[SiteFile]:
        """The files that change only with the code or the join link: CSS, scripts, the QR code."""
        files = [SiteFile(name, _static(name), ctype, CACHE_ASSET) for name, ctype in STATIC_FILES.items()]
        files.append(SiteFile("qr.svg", _qr_svg(self._join_target(community)), SVG, CACHE_ASSET))
        return files

    # -- change tracking -----------------------------------------------------------------------

    def _changed_pages(
        self,
        current: list[Post],
        layout: Layout,
        changed: set[str],
        deleted: set[str],
        previous: Mapping[str, Post] | None,
    ) -> tuple[list[int], int]:
        """The archive pages to rewrite, and how many archive pages there were (at most) before."""
        if not changed and not deleted:
            return [], layout.pages
        first = layout.offset + 1
        every = list(range(first, layout.pages + 1))
        unpinned = layout.offset * self.page_size + sum(len(bucket) for bucket in layout.buckets)
        bound = -(-(unpinned + len(changed) + len(deleted)) // self.page_size)
        if previous is None:
            # Without the old versions only a first version is known not to have moved: an edit may
            # have changed a post's date or pin, and a deleted post's place is unknown.
            by_id = {p.id: p for p in current}
            if deleted or any(by_id[pid].version > 1 for pid in changed):
                return self._every(layout, every, bound)
            previous = {}
        if any(pid not in previous for pid in deleted):
            return self._every(layout, every, bound)
        before = [previous.get(p.id, p) for p in current if p.id not in changed or p.id in previous]
        before += [previous[pid] for pid in deleted]
        if layout.offset:
            # The pages not held are the same before only if no old version was ranked among them.
            held = [p for bucket in layout.buckets for p in bucket]
            boundary = _chrono_key(held[0]) if held else None
            for pid in changed:
                old_post = previous.get(pid)
                outside = boundary is None or (old_post is not None and _chrono_key(old_post) < boundary)
                if old_post is not None and not old_post.pinned and outside:
                    raise OutsideWindow(f"post {pid} was ranked before the pages held")
        old = Layout.of(before, self.page_size, layout.offset)
        pages: list[int] = []
        for page in range(first, layout.pages + 1):
            moved = page > old.pages or layout.page_signature(page) != old.page_signature(page)
            touched = any(p.id in changed for p in layout.bucket(page))
            links = old.pages != layout.pages and page in (old.pages, layout.pages)
            if moved or touched or links:
                pages.append(page)
        if layout.offset and old.pages <= layout.offset and old.pages != layout.pages:
            raise OutsideWindow(f"archive page {old.pages} links to a page that is new")
        return pages, old.pages

    @staticmethod
    def _every(layout: Layout, every: list[int], bound: int) -> tuple[list[int], int]:
        if layout.offset:
            raise OutsideWindow("the change may have moved posts between pages not held")
        return every, bound

    # -- files -----------------------------------------------------------------------------------

    def _live_files(
        self, community: CommunityView, layout: Layout, views: _Views, languages: Sequence[str] = ()
    ) -> list[SiteFile]:
        """The root's community page, join page and feeds; each language's community page and feeds."""
        files: list[SiteFile] = []
        for edition in [self.root, *(self.edition(lang) for lang in languages)]:
            newest = [views.get(p, edition) for p in layout.newest(self.feed_size)]
            meta = self._feed_meta(community, newest, edition)
            prefix = edition.prefix
            files.append(
                SiteFile(
                    f"{prefix}index.html", self._index(community, layout, views, edition), HTML, CACHE_LIVE
                )
            )
            files.append(SiteFile(f"{prefix}feed.atom", feeds.atom(meta), ATOM, CACHE_LIVE))
            files.append(SiteFile(f"{prefix}feed.json", feeds.json_feed(meta), JSON_FEED, CACHE_LIVE))
        files.append(SiteFile("join/index.html", self._join_page(community), HTML, CACHE_LIVE))
        return files

    def _variant_files(
        self, community: CommunityView, post: Post, variants: Mapping[str, Variant], views: _Views
    ) -> list[SiteFile]:
        """The pages of the post's variants that ``variants`` holds (those the post names)."""
        return [
            self._post_file(community, post, variants[lang], views)
            for lang in post_languages(post)
            if lang in variants and variants[lang].post_id == post.id
        ]

    def _post_file(
        self, community: CommunityView, post: Post, variant: Variant | None, views: _Views
    ) -> SiteFile:
        lang = variant.lang if variant is not None else None
        edition = self.edition(lang) if lang is not None else self.root
        view = self.view(post, variant=variant, chrome=edition.chrome)
        root = edition.up + "../../"
        html_lang = lang or post.language or self.lang
        body = self._page(
            "post.html",
            community,
            edition,
            root=root,
            home=self._home(root + edition.prefix),
            html_lang=html_lang,
            html_dir=direction(html_lang) if (lang or post.language) else self.page_dir,
            canonical=view.url,
            title=f"{view.title} · {community.name}",
            description=view.excerpt,
            og_type="article",
            post=view,
            languages=self._language_links(post, lang, root),
        )
        return SiteFile(post_path(post.id, lang), body, HTML, CACHE_PAGE)

    def _language_links(self, post: Post, current: str | None, root: str) -> list[LanguageLink]:
        """The post's original and each variant: the switcher and the ``hreflang`` alternates
        (none for a post without variants)."""
        if not post.variants:
            return []
        original_href = post_path(post.id).removesuffix("index.html")
        links = [
            LanguageLink(
                lang=post.language,
                label=language_name(post.language) if post.language else self.strings["original"],
                href=self._dir(root + original_href),
                url=self.base_url + original_href,
                current=current is None,
                machine=False,
            )
        ]
        for lang in post_languages(post):
            href = post_path(post.id, lang).removesuffix("index.html")
            links.append(
                LanguageLink(
                    lang=lang,
                    label=language_name(lang),
                    href=self._dir(root + href),
                    url=self.base_url + href,
                    current=current == lang,
                    machine=post.variants[lang].origin == VariantOrigin.MACHINE,
                )
            )
        return links

    def _index(self, community: CommunityView, layout: Layout, views: _Views, edition: Edition) -> bytes:
        shown = layout.index_buckets(self.page_size)
        posts = [views.get(p, edition) for p in layout.pinned]
        for page in shown:
            posts.extend(views.get(p, edition) for p in reversed(layout.bucket(page)))
        older = min(shown) - 1 if shown and min(shown) > 1 else None
        root = edition.up
        return self._page(
            "index.html",
            community,
            edition,
            root=root,
            home=self._home(root + edition.prefix),
            canonical=self.base_url + edition.prefix,
            title=community.name,
            description=community.description or "",
            og_type="website",
            posts=posts,
            older=self._dir(f"{root}page/{older}/") if older else None,
            **self._profile(community, root, edition.chrome),
        )

    def _archive_page(self, community: CommunityView, layout: Layout, page: int, views: _Views) -> SiteFile:
        edition = self.root
        posts = [views.get(p, edition) for p in reversed(layout.bucket(page))]
        newer = (
            self._dir(f"page/{page + 1}/")
            if page < layout.pages
            else ("" if self.pretty_urls else "index.html")
        )
        older = self._dir(f"page/{page - 1}/") if page > 1 else None
        body = self._page(
            "page.html",
            community,
            edition,
            root="../../",
            home=self._home("../../"),
            canonical=f"{self.base_url}page/{page}/",
            title=f"{community.name} · {self.strings['page'].format(n=page)}",
            description=community.description or "",
            og_type="website",
            posts=posts,
            page=page,
            newer=newer,
            older=older,
        )
        return SiteFile(f"page/{page}/index.html", body, HTML, CACHE_PAGE)

    def _join_page(self, community: CommunityView) -> bytes:
        return self._page(
            "join.html",
            community,
            self.root,
            root="../",
            home=self._home("../"),
            canonical=f"{self.base_url}join/",
            title=f"{self.strings['join']} · {community.name}",
            description=community.description or "",
            og_type="website",
            **self._profile(community, "../", self.chrome),
        )

    def _page(self, template: str, community: CommunityView, edition: Edition, **context: Any) -> bytes:
        chrome = edition.chrome
        context.setdefault("html_lang", edition.html_lang)
        context.setdefault("html_dir", edition.html_dir)
        context.setdefault("languages", [])
        html = _template(template).render(
            community=community,
            t=chrome.strings,
            lang=chrome.lang,
            page_dir=chrome.dir,
            csp=self.csp,
            og_locale=str(chrome.locale),
            feeds_root=context["root"] + edition.prefix,
            **context,
        )
        return html.encode("utf-8")

    def _home(self, folder: str) -> str:
        """A link to a community page from a page: ``folder`` is the path to its folder."""
        return (folder or "./") if self.pretty_urls else f"{folder}index.html"

    def _profile(self, community: CommunityView, root: str, chrome: Chrome) -> dict[str, Any]:
        join_href = community.join_url if community.join_url and safe_href(community.join_url) else None
        api = self.api_url
        return {
            "members_display": counts.compact_number(community.members, chrome.locale),
            "members_exact": counts.exact_number(community.members, chrome.locale),
            "join_href": join_href,
            "join_api": urls.members_api_url(api, community.id) if api else None,
            "community_api": urls.community_api_url(api, community.id) if api else None,
            "vapid_key": self.vapid_public_key,
            "demo_subscription": self.demo_subscription,
            "service_worker": f"{root}sw.js",
        }

    def _feed_meta(
        self, community: CommunityView, newest: Sequence[PostView], edition: Edition
    ) -> feeds.FeedMeta:
        entries = [
            feeds.FeedEntry(
                id=view.url,
                url=view.url,
                title=view.title,
                summary=view.excerpt,
                content_html=str(view.body),
                content_text=view.text,
                published=view.published,
                updated=view.updated,
                language=view.lang,
                tags=view.feed_tags,
            )
            for view in newest
        ]
        home = self.base_url + edition.prefix
        return feeds.FeedMeta(
            title=community.name,
            description=community.description,
            home_page_url=home,
            atom_url=f"{home}feed.atom",
            json_url=f"{home}feed.json",
            author=community.name,
            language=edition.html_lang,
            entries=entries,
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _dir(self, path: str) -> str:
        """A link to a directory's page: ``posts/x/`` or ``posts/x/index.html``."""
        return path if self.pretty_urls else f"{path}index.html"

    def _join_target(self, community: CommunityView) -> str:
        return community.join_url or f"{self.base_url}join/"

    def _csp(self) -> str:
        connect = "'none'"
        if self.api_url:
            parts = urlsplit(self.api_url)
            if parts.scheme in ("http", "https") and parts.netloc:
                connect = f"{parts.scheme}://{parts.netloc}"
        return (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
            f"connect-src {connect}; base-uri 'none'; form-action 'none'"
        )

    def view(
        self,
        post: Post,
        lang: str | None = None,
        *,
        variant: Variant | None = None,
        chrome: Chrome | None = None,
    ) -> PostView:
        """The post as a page of ``lang`` lists it: its ``lang`` variant by the post's summary of it
        when it has one, else its original (``marked`` with its language); ``variant``: that
        variant in full (its own page). Dates in ``chrome``'s locale (default: the site's)."""
        from babel.dates import format_date

        chrome = chrome or self.chrome
        published = published_at(post)
        date_display = _date(format_date, published.date(), chrome.locale)
        if variant is not None:
            body = formats.of(variant.format).html(variant.text, variant.links)
            derived = [*variant.hashtags, *variant.topics]
            return self._language_view(post, variant, published, date_display, body, variant.text, derived)
        summary = post.variants.get(lang) if lang else None
        if summary is not None:
            # Without the variant's own item: its excerpt as its text, the original's tags.
            body = Markup("<p>{}</p>").format(escape(summary.excerpt))
            derived = [*post.hashtags, *post.topics]
            return self._language_view(post, summary, published, date_display, body, summary.excerpt, derived)
        updated = max(_utc(post.updated_at), published)
        language = post.language
        href = post_path(post.id).removesuffix("index.html")
        body = formats.of(post.format).html(post.text, post.links)
        marked = None
        if lang and language != lang:
            marked = language_name(language) if language else chrome.strings["original"]
        return PostView(
            id=post.id,
            href=self._dir(href),
            url=f"{self.base_url}{href}",
            title=post.title,
            body=body,
            text=post.text,
            excerpt=post.excerpt,
            lang=language,
            dir=_article_dir(language),
            published=published,
            updated=updated,
            published_display=date_display,
            pinned=post.pinned,
            tags=tuple(post.tags),
            feed_tags=tuple(dict.fromkeys([*post.tags, *post.hashtags, *post.topics])),
            marked=marked,
        )

    def _language_view(
        self,
        post: Post,
        shown: Variant | VariantSummary,
        published: datetime,
        display: str,
        body: Markup,
        text: str,
        derived_tags: list[str],
    ) -> PostView:
        """``post`` in the language of ``shown`` (its variant, or the post's summary of it) with
        ``body`` and ``text``; ``derived_tags`` (hashtags, topics) follow the post's tags in its feeds."""
        href = post_path(post.id, shown.lang).removesuffix("index.html")
        return PostView(
            id=post.id,
            href=self._dir(href),
            url=f"{self.base_url}{href}",
            title=shown.title,
            body=body,
            text=text,
            excerpt=shown.excerpt,
            lang=shown.lang,
            dir=_article_dir(shown.lang),
            published=published,
            updated=max(_utc(shown.updated_at), published),
            published_display=display,
            pinned=post.pinned,
            tags=tuple(post.tags),
            feed_tags=tuple(dict.fromkeys([*post.tags, *derived_tags])),
            variant=shown.lang,
            machine=shown.origin == VariantOrigin.MACHINE,
        )


def _article_dir(lang: str | None) -> str:
    """A post's ``dir``: ``rtl`` for a right-to-left language, else ``auto`` (the text decides)."""
    return "rtl" if direction(lang) == "rtl" else "auto"


def _date(formatter: Any, day: date, locale: Any) -> str:
    return _format_date(formatter, day, str(locale))


@lru_cache(maxsize=8192)
def _format_date(formatter: Any, day: date, locale: str) -> str:
    return str(formatter(day, format="medium", locale=locale))


class _Views:
    """Each post turned into a :class:`PostView` once per render and edition."""

    def __init__(self, renderer: SiteRenderer) -> None:
        self._renderer = renderer
        self._views: dict[tuple[str, str | None, str], PostView] = {}

    def get(self, post: Post, edition: Edition | None = None) -> PostView:
        edition = edition or self._renderer.root
        key = (post.id, edition.lang, edition.chrome.lang)
        view = self._views.get(key)
        if view is None:
            view = self._views[key] = self._renderer.view(post, edition.lang, chrome=edition.chrome)
        return view
