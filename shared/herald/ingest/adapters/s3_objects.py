"""The uploads bucket on S3 (implements :class:`herald.ingest.ports.ObjectStore`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from herald.content.limits import rejected_names
from herald.core.aws import LazyClient, as_domain_error, error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_GONE = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound", "InvalidArgument"})


class S3ObjectStore:
    def __init__(self, s3: S3Client | None = None) -> None:
        self._s3 = s3

    s3: LazyClient[S3Client] = LazyClient("s3")

    def read(self, bucket: str, key: str, version_id: str | None, max_bytes: int) -> bytes | None:
        """At most ``max_bytes + 1`` bytes (a ranged GET), so an object too big is never read whole."""
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes=0-{max_bytes}"}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self.s3.get_object(**params)
            return response["Body"].read()
        except ClientError as exc:
            if error_code(exc) in _GONE:
                return None
            if error_code(exc) == "InvalidRange":  # an empty object has no byte 0
                return b""
            raise as_domain_error(exc, f"reading s3://{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise as_domain_error(exc, f"reading s3://{bucket}/{key}") from exc

    def keep_rejected(
        self, bucket: str, key: str, version_id: str | None, report: dict[str, Any]
    ) -> str | None:
        """The original at ``rejected/<key>``, the report at ``rejected/<key>.error.json`` (a key too
        long for that keeps a shortened, unique name: see :func:`herald.content.limits.rejected_names`)."""
        copy_key, report_key = rejected_names(key)
        source: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version_id:
            source["VersionId"] = version_id
        try:
            self.s3.copy_object(Bucket=bucket, Key=copy_key, CopySource=source)  # type: ignore[arg-type]
            report = {**report, "original": copy_key}
        except ClientError as exc:
            if error_code(exc) not in _GONE:
                raise as_domain_error(exc, f"keeping a copy of s3://{bucket}/{key}") from exc
            copy_key = ""
        try:
            self.s3.put_object(
                Bucket=bucket,
                Key=report_key,
                Body=json.dumps(report, ensure_ascii=False, indent=2).encode(),
                ContentType="application/json; charset=utf-8",
            )
        except (ClientError, BotoCoreError) as exc:
            raise as_domain_error(exc, f"writing the rejection report of s3://{bucket}/{key}") from exc
        return copy_key or None
