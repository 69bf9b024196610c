"""The public site's bucket on S3: what is there (ETags), uploads with their headers, deletes.

Implements :class:`herald.site.publisher.SiteStore`. Each community's site lives under
``<community>/`` and every object carries the ``Content-Type`` and ``Cache-Control`` it is served
with (CloudFront passes both on). What is there is learned from S3 itself, never from a manifest
that could drift: ``HeadObject`` for the few files an incremental change writes, one
``ListObjectsV2`` page per 1,000 objects for a whole site.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.core.aws import LazyClient, as_transient, error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from herald.site import SiteFile

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
_DELETE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What S3 says of one object: its ETag (the body's MD5 for a single-part upload) and headers."""

    md5: str
    content_type: str | None = None
    cache_control: str | None = None

    def matches(self, file: SiteFile) -> bool:
        if self.md5 != file.md5:
            return False
        if self.content_type is not None and self.content_type != file.content_type:
            return False
        return self.cache_control is None or self.cache_control == file.cache_control


class S3SiteStore:
    """One bucket; keys are ``<prefix><path>``. Calls run on up to ``concurrency`` threads."""

    def __init__(self, bucket: str, s3: S3Client | None = None, *, concurrency: int = 16) -> None:
        self.bucket = bucket
        self._s3 = s3
        self.concurrency = concurrency

    s3: LazyClient[S3Client] = LazyClient("s3")

    # -- reads -----------------------------------------------------------------------------------

    def head(self, keys: Sequence[str]) -> dict[str, StoredObject]:
        """The objects among ``keys`` that exist (one HeadObject each, in parallel)."""
        found = self._parallel(self._head, keys)
        return {key: obj for key, obj in zip(keys, found, strict=True) if obj is not None}

    def _head(self, key: str) -> StoredObject | None:
        try:
            response = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise as_transient(exc, f"reading s3://{self.bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise as_transient(exc, f"reading s3://{self.bucket}/{key}") from exc
        return StoredObject(
            md5=_etag(response.get("ETag", "")),
            content_type=response.get("ContentType"),
            cache_control=response.get("CacheControl"),
        )

    def list(self, prefix: str) -> dict[str, StoredObject]:
        """Every object under ``prefix`` (ETags only: a listing has no headers)."""
        found: dict[str, StoredObject] = {}
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            try:
                response = self.s3.list_objects_v2(**params)
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, f"listing s3://{self.bucket}/{prefix}") from exc
            for item in response.get("Contents", []):
                found[item["Key"]] = StoredObject(md5=_etag(item.get("ETag", "")))
            if not response.get("IsTruncated"):
                return found
            params["ContinuationToken"] = response["NextContinuationToken"]

    def folders(self, prefix: str) -> builtins.list[str]:
        """The folder names right under ``prefix`` (``ListObjectsV2`` with ``Delimiter="/"``)."""
        found: builtins.list[str] = []
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        while True:
            try:
                response = self.s3.list_objects_v2(**params)
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, f"listing s3://{self.bucket}/{prefix}") from exc
            for item in response.get("CommonPrefixes", []):
                found.append(item["Prefix"].removeprefix(prefix).rstrip("/"))
            if not response.get("IsTruncated"):
                return found
            params["ContinuationToken"] = response["NextContinuationToken"]

    # -- writes ----------------------------------------------------------------------------------

    def put(self, prefix: str, files: Sequence[SiteFile]) -> None:
        self._parallel(lambda f: self._put(prefix + f.path, f), files)

    def _put(self, key: str, file: SiteFile) -> None:
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=file.body,
                ContentType=file.content_type,
                CacheControl=file.cache_control,
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, f"writing s3://{self.bucket}/{key}") from exc

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            try:
                response = self.s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as exc:
                raise as_transient(exc, f"deleting {len(batch)} object(s) of s3://{self.bucket}") from exc
            errors = [e for e in response.get("Errors", []) if e.get("Code") not in _MISSING]
            if errors:
                first = errors[0]
                raise as_transient(
                    RuntimeError(f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"),
                    f"deleting {len(errors)} object(s) of s3://{self.bucket}",
                )

    # -- plumbing --------------------------------------------------------------------------------

    def _parallel(self, fn: Any, items: Sequence[Any]) -> builtins.list[Any]:
        if len(items) <= 1 or self.concurrency <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))


def _etag(value: str) -> str:
    return value.strip('"').lower()
