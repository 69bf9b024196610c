"""The translator function in the local cloud: its worker's own boto3 client reaches the Translate
stand-in on the local cloud's endpoint (``AWS_ENDPOINT_URL``, as for every other service), fed by
the content table's stream after an upload goes through ingest."""

from __future__ import annotations

import io

from herald_tools.localcloud import LocalCloud
from tests.localcloud.conftest import PROJECT_TEMPLATE

COMMUNITY = "harbour-line"


def test_an_upload_gets_its_machine_variants_from_the_stand_in() -> None:
    functions = ["IngestFunction", "TranslatorFunction"]
    with LocalCloud(PROJECT_TEMPLATE, functions=functions, logs=io.StringIO()).start(port=0) as cloud:
        ddb, table = cloud.client("dynamodb"), str(cloud.outputs["ContentTableName"])
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": f"C#{COMMUNITY}"}, "sk": {"S": "PROFILE"}},
            UpdateExpression="SET settings = :s",
            ExpressionAttributeValues={
                ":s": {"M": {"machine_translations": {"L": [{"S": "fr"}, {"S": "ar"}]}}}
            },
        )
        cloud.client("s3").put_object(
            Bucket=cloud.resources.uploads_bucket,
            Key=f"posts/{COMMUNITY}/clinic.txt",
            Body=b"The clinic is open from 8:00 to 16:00 on weekdays, closed on public holidays.",
        )
        cloud.wait_until_idle(timeout=120)
        assert sorted((c.source, c.target, c.status) for c in cloud.translate.calls) == [
            ("en", "ar", 200),
            ("en", "fr", 200),
        ]
        variants = ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :p AND begins_with(sk, :v)",
            ExpressionAttributeValues={":p": {"S": f"C#{COMMUNITY}"}, ":v": {"S": "VAR#"}},
            ConsistentRead=True,
        )["Items"]
        assert sorted(v["lang"]["S"] for v in variants) == ["ar", "fr"]
        assert all(v["origin"]["S"] == "machine" for v in variants)
        assert all("stand-in] The clinic" in v["text"]["S"] for v in variants)
