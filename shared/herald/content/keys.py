"""The content table's keys that more than one feature reads (a post's, a community's partition, a
language variant's), and the variant's item (its values), which two features write (ingest the human ones, the
translator the machine ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the keys stay cheap to import: the handlers import them at start
    from herald.content.models import Variant

#: The sort keys of language variants begin so: ``VAR#<post id>#<lang>``.
VARIANT_PREFIX = "VAR#"


def community_pk(community: str) -> str:
    return f"C#{community}"


def post_key(community: str, post_id: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"POST#{post_id}"}}


def variant_sort_key(container: str, lang: str | None = None) -> str:
    """``VAR#<container>#<lang>`` (the container: the post's id, or its stem's while the variant waits
    for its original); with no ``lang``, the prefix of every variant in the container."""
    return f"{VARIANT_PREFIX}{container}#{lang or ''}"


def variant_key(community: str, container: str, lang: str) -> dict[str, Any]:
    """A variant's item, under its post's id (or its stem's id while it waits for its original)."""
    return {"pk": {"S": community_pk(community)}, "sk": {"S": variant_sort_key(container, lang)}}


def variant_values(variant: Variant) -> dict[str, Any]:
    """The variant's item as stored, in plain values (an adapter makes the DynamoDB item of them):
    its fields, its key (under ``post_id``) and ``type: variant``."""
    values = variant.model_dump(mode="json", exclude_none=True)
    values.update(
        pk=community_pk(variant.community), sk=variant_sort_key(variant.post_id, variant.lang), type="variant"
    )
    return values
