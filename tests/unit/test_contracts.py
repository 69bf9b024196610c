"""docs/contracts/*.schema.json are the fan-out job models' JSON Schemas, and describe the jobs sent."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from herald.fanout import contracts
from herald.fanout.jobs import CONTRACTS, PostJob, PostSummary, PushJob, ReleaseJob, ShardJob, Target

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = ROOT / "docs" / "contracts"
REGENERATE = f"cd {ROOT} && PYTHONPATH=shared .venv/bin/{contracts.COMMAND}"

POST = PostSummary("harbour", "0123456789abcdef0123", "T", "E", "https://herald.example/p/", topics=("sea",))
SAMPLES = {
    "release_job": ReleaseJob(post=POST),
    "post_job": PostJob(post=POST),
    "shard_job": ShardJob(post=POST, shard=3, after="m9"),
    "push_job": PushJob(
        job_id="j",
        post=POST,
        targets=(
            Target(
                member_id="m1",
                channel="web",
                subscription="s1",
                web_push={"endpoint": "https://push.example/x", "keys": {"p256dh": "P", "auth": "A"}},
            ),
            Target(
                member_id="m2", channel="apns", subscription="s2", address="arn:aws:sns:endpoint/APNS/a/1"
            ),
        ),
        not_before=1767229200.0,
        deferred_recorded=True,
    ),
}


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_the_schema_file_is_the_models(name: str) -> None:
    path = contracts.path_of(DIRECTORY, name)
    assert path.is_file(), f"{path} is missing: run `{REGENERATE}`"
    assert path.read_text(encoding="utf-8") == contracts.render(name), (
        f"{path} differs from herald.fanout.jobs.{CONTRACTS[name].__name__}: run `{REGENERATE}`"
    )


def test_the_check_names_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contracts.write(tmp_path)
    assert contracts.main(["--check", str(tmp_path)]) == 0
    contracts.path_of(tmp_path, "shard_job").write_text("{}\n", encoding="utf-8")
    assert contracts.main(["--check", str(tmp_path)]) == 1
    assert "shard_job.schema.json differs from its model" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_the_schema_describes_the_job_sent(name: str) -> None:
    """What a queue carries (the job's JSON) is valid against its schema, and a job missing a
    required key is not."""
    document = json.loads(contracts.render(name))
    jsonschema.Draft202012Validator.check_schema(document)
    sent = json.loads(json.dumps(SAMPLES[name].as_dict()))
    jsonschema.validate(sent, document)
    del sent["post"]["post_id"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(sent, document)
