"""Machine translation's reads and writes of the content table (the ``VariantStore`` port).

Items (``pk`` / ``sk``), as docs/translation.md lists them:

===================  =================  ======================  ====================================
item                 pk                 sk                      written by
===================  =================  ======================  ====================================
community profile    ``C#<community>``  ``PROFILE``             ingest (``settings`` read here)
post                 ``C#<community>``  ``POST#<id>``           ingest; ``variants.<lang>`` here
language variant     ``C#<community>``  ``VAR#<id>#<lang>``     ingest (human), here (machine)
refused translation  ``C#<community>``  ``MTFAIL#<id>#<lang>``  here (expires after 30 days)
===================  =================  ======================  ====================================

A machine variant is written in one transaction with its summary on the post item
(``variants.<lang>``, and ``variants_rev`` counted one more, as ingest counts its own writes of the
map), guarded twice: the variant item must be absent or a machine one (a human
variant is never replaced), and the post must still have the text the translation was made from
(``content_hash`` = the variant's ``source_hash``), so a translation of an older text never lands
on a newer one.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from herald.content.keys import community_pk, post_key, variant_sort_key, variant_values
from herald.content.models import Variant, VariantOrigin
from herald.core.aws import DynamoTable, as_conflict, as_domain_error, from_item, to_item
from herald.core.errors import ConcurrentUpdate
from herald.translation.ports import CommunitySettings, StoredTranslations, TranslationFailure

log = logging.getLogger(__name__)

#: How long a refusal is remembered (DynamoDB's TTL removes it; the post may be edited before).
FAILURE_TTL = timedelta(days=30)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")
#: Every write of a post's ``variants`` counts one more ``variants_rev`` (absent: 0), so that ingest's
#: read-modify-write of the map (guarded on the revision it read) never writes over this summary.
_NEXT_REVISION = "variants_rev = if_not_exists(variants_rev, :zero) + :one"


def failure_key(community: str, post_id: str, lang: str) -> dict[str, Any]:
    return {"pk": {"S": community_pk(community)}, "sk": {"S": f"MTFAIL#{post_id}#{lang}"}}


def machine_translations(settings: Any) -> tuple[str, ...]:
    """The languages a PROFILE item's ``settings`` lists to fill in by machine: lowercase codes, in
    their order, once each; anything that is not a language code is left out (and logged)."""
    listed = settings.get("machine_translations") if isinstance(settings, dict) else None
    if not isinstance(listed, list):
        return ()
    found: list[str] = []
    for value in listed:
        code = value.strip().lower() if isinstance(value, str) else ""
        if not _LANGUAGE.match(code):
            log.warning("machine_translations: %r is not a language code; left out", value)
        elif code not in found:
            found.append(code)
    return tuple(found)


class DynamoVariantStore(DynamoTable):
    def settings(self, community: str) -> CommunitySettings:
        key = {"pk": {"S": community_pk(community)}, "sk": {"S": "PROFILE"}}
        item = self.get_item(key, consistent=False, what=f"reading the settings of {community}")
        values = from_item(item) if item else {}
        return CommunitySettings(machine_translations=machine_translations(values.get("settings")))

    def stored(self, community: str, post_id: str) -> StoredTranslations:
        variants: dict[str, Variant] = {}
        for raw in self._prefix(community, variant_sort_key(post_id)):
            try:
                variant = Variant.model_validate(from_item(raw))
            except ValidationError as exc:
                raise ValueError(f"{raw['sk']['S']} of {community} is not a variant: {exc}") from exc
            variants[variant.lang] = variant
        failures: dict[str, TranslationFailure] = {}
        for raw in self._prefix(community, f"MTFAIL#{post_id}#"):
            item = from_item(raw)
            failures[item["lang"]] = TranslationFailure(
                community=community,
                post_id=post_id,
                lang=item["lang"],
                source_hash=item["source_hash"],
                code=item.get("code", ""),
                message=item.get("message", ""),
                failed_at=datetime.fromisoformat(item["failed_at"]),
            )
        return StoredTranslations(variants=variants, failures=failures)

    def put_machine_variant(self, variant: Variant) -> bool:
        if variant.origin is not VariantOrigin.MACHINE or variant.source_hash is None:
            raise ValueError(f"not a machine variant with its source: {variant.post_id} {variant.lang}")
        summary = to_item({":s": variant.summary().model_dump(mode="json"), ":h": variant.source_hash})
        try:
            self._put(
                variant, f"SET variants.#l = :s, {_NEXT_REVISION}", "attribute_exists(variants)", summary
            )
        except ConcurrentUpdate as lost:
            if lost.guard_failed(0) or not self._lacks_variants_map(variant):
                return False
            # A post stored before posts had variants: the map is made with this one in it.
            values = to_item({":s": {variant.lang: variant.summary().model_dump(mode="json")}})
            values[":h"] = summary[":h"]
            try:
                self._put(
                    variant, f"SET variants = :s, {_NEXT_REVISION}", "attribute_not_exists(variants)", values
                )
            except ConcurrentUpdate:
                return False
        return True

    def record_failure(self, failure: TranslationFailure) -> None:
        values = {
            "type": "machine-translation-failure",
            "community": failure.community,
            "post_id": failure.post_id,
            "lang": failure.lang,
            "source_hash": failure.source_hash,
            "code": failure.code,
            "message": failure.message[:1000],
            "failed_at": failure.failed_at.astimezone(UTC).isoformat(),
            "expires_at": int((failure.failed_at + FAILURE_TTL).timestamp()),
        }
        item = {**failure_key(failure.community, failure.post_id, failure.lang), **to_item(values)}
        try:
            self.ddb.put_item(TableName=self.table, Item=item)
        except (ClientError, BotoCoreError) as exc:
            raise as_domain_error(exc, "recording a refused translation") from exc

    # -- plumbing ------------------------------------------------------------------------------

    def _put(self, variant: Variant, update: str, guard: str, values: dict[str, Any]) -> None:
        machine = {":machine": {"S": VariantOrigin.MACHINE.value}}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(variant_values(variant)),
                    "ConditionExpression": "attribute_not_exists(pk) OR origin = :machine",
                    "ExpressionAttributeValues": machine,
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": post_key(variant.community, variant.post_id),
                    "UpdateExpression": update,
                    "ConditionExpression": f"content_hash = :h AND {guard}",
                    **({"ExpressionAttributeNames": {"#l": variant.lang}} if "#l" in update else {}),
                    "ExpressionAttributeValues": {**values, ":zero": {"N": "0"}, ":one": {"N": "1"}},
                }
            },
        ]
        what = f"storing the machine variant {variant.lang} of {variant.post_id}"
        try:
            self.ddb.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            conflict = as_conflict(exc, what)
            if conflict is not None:
                raise conflict from exc
            raise as_domain_error(exc, what) from exc
        except BotoCoreError as exc:
            raise as_domain_error(exc, what) from exc

    def _lacks_variants_map(self, variant: Variant) -> bool:
        """Whether the post is there, with the variant's source text, but without a ``variants`` map."""
        item = self.get_item(
            post_key(variant.community, variant.post_id), consistent=True, what="reading a post"
        )
        if not item:
            return False
        return item.get("content_hash", {}).get("S") == variant.source_hash and "variants" not in item

    def _prefix(self, community: str, prefix: str) -> Any:
        params = {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": community_pk(community)}, ":s": {"S": prefix}},
            "ConsistentRead": True,
        }
        return self.query_items(params, what=f"reading {prefix} of {community}")
