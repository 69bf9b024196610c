"""What the publisher reads of a community's language variants in the content table.

A variant's own item is ``pk = C#<community>``, ``sk = VAR#<post id>#<lang>`` (its fields are
:class:`herald.content.models.Variant`'s); the post item's ``variants`` map already says which
variants a post has and carries their titles and excerpts, so only a variant's own page needs its
item. The community's settings (``settings.default_language``) are on its ``PROFILE`` item.

* :meth:`post_variants`: one Query ``begins_with(sk, "VAR#<id>#")`` (consistent), when a post's
  variant pages are to be rendered again;
* :meth:`community_variants`: one Query ``begins_with(sk, "VAR#")``, paged, for a full render;
* :meth:`default_language`: one GetItem of the profile's ``settings``;
* :meth:`chosen`: given variants of many posts, one BatchGetItem per 100 (the API's pages).

A variant still waiting for its original (``pending``) is no page and is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from herald.content.keys import VARIANT_PREFIX, community_pk, variant_sort_key
from herald.content.models import Variant
from herald.core.aws import DynamoTable, from_item


class DynamoVariantReader(DynamoTable):
    """Reads variant items and the community's default language from the content table."""

    def post_variants(self, community: str, post_id: str) -> dict[str, Variant]:
        """The post's stored variants by language (one Query, consistent)."""
        found: dict[str, Variant] = {}
        for variant in self._query(
            community, variant_sort_key(post_id), f"reading the variants of post {post_id}"
        ):
            if variant.post_id == post_id:
                found[variant.lang] = variant
        return found

    def community_variants(self, community: str) -> dict[str, dict[str, Variant]]:
        """Every stored variant of the community: post id -> language -> variant."""
        found: dict[str, dict[str, Variant]] = {}
        for variant in self._query(community, VARIANT_PREFIX, f"reading the variants of {community}"):
            found.setdefault(variant.post_id, {})[variant.lang] = variant
        return found

    def chosen(self, community: str, wanted: Mapping[str, str]) -> dict[str, Variant]:
        """The variant items of ``wanted`` (post id -> language), by post id; those that exist."""
        keys = [
            {"pk": {"S": community_pk(community)}, "sk": {"S": variant_sort_key(pid, lang)}}
            for pid, lang in sorted(wanted.items())
        ]
        items = self.batch_get_items(keys, consistent=False, what=f"reading variants of {community}")
        found = [Variant.model_validate(from_item(item)) for item in items]
        return {v.post_id: v for v in found if not v.pending and wanted.get(v.post_id) == v.lang}

    def default_language(self, community: str) -> str | None:
        """The community's ``settings.default_language``, if its profile has one."""
        from botocore.exceptions import BotoCoreError, ClientError

        from herald.core.aws import as_transient

        try:
            response = self.ddb.get_item(
                TableName=self.table,
                Key={"pk": {"S": community_pk(community)}, "sk": {"S": "PROFILE"}},
                ProjectionExpression="#s",
                ExpressionAttributeNames={"#s": "settings"},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, f"reading the settings of {community}") from exc
        settings = from_item(response.get("Item") or {}).get("settings")
        lang = settings.get("default_language") if isinstance(settings, dict) else None
        return lang if isinstance(lang, str) and lang else None

    def _query(self, community: str, prefix: str, what: str) -> list[Variant]:
        params: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": community_pk(community)}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        variants = [Variant.model_validate(from_item(item)) for item in self.query_items(params, what=what)]
        return [v for v in variants if not v.pending]
