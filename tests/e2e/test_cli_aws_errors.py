"""AWS's errors end a ``herald`` command with one line on stderr and exit status 1 (a parameter that
exists, no credentials, an endpoint nobody answers at); Herald's own bugs keep their traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald_tools.cli import _publish_outputs
from herald_tools.localcloud.cloud import LocalCloud
from herald_tools.localcloud.server import free_port
from herald_tools.stack import OUTPUTS_PARAMETER

ROOT = Path(__file__).resolve().parents[2]
HERALD = [sys.executable, "-m", "herald_tools.cli"]
pytestmark = pytest.mark.e2e

#: The name README.md's first deploy stores the key under (samconfig.toml's dev stage), which is
#: also where the local cloud keeps the key it makes when it starts (template.yaml's default).
README_PARAMETER = "/herald/dev/vapid-private-key"


def no_aws(home: Path, **extra: str) -> dict[str, str]:
    """This environment without any AWS setting: no credentials, no config, no instance metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    )
    return {**env, **extra}


def herald(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HERALD, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command wrote on stderr (and that it wrote nothing on stdout)."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    logs = tmp_path_factory.mktemp("aws-errors") / "functions.log"
    with LocalCloud(ROOT / "template.yaml", project_root=ROOT, logs=str(logs)).start(port=0) as started:
        _publish_outputs(started)
        yield started


def test_a_vapid_key_that_exists_is_named_with_the_option_that_replaces_it(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    from herald.fanout.channels.vapid import load_vapid_key, public_key_b64

    result = herald(
        no_aws(tmp_path), "vapid-keys", "--endpoint-url", cloud.endpoint_url, "--put", README_PARAMETER
    )
    assert one_line(result) == (
        f"herald vapid-keys: the SSM parameter {README_PARAMETER} already exists "
        "(ParameterAlreadyExists); pass --overwrite to replace it"
    )
    stored = cloud.client("ssm").get_parameter(Name=README_PARAMETER, WithDecryption=True)["Parameter"]
    assert public_key_b64(load_vapid_key(stored["Value"]).public_key()) == cloud.vapid_public_key  # untouched


def test_without_credentials_one_line_says_so(tmp_path: Path) -> None:
    result = herald(no_aws(tmp_path), "vapid-keys", "--region", "eu-west-1", "--put", README_PARAMETER)
    line = one_line(result)
    assert line.startswith(
        f"herald vapid-keys: cannot store the private key as the SSM parameter {README_PARAMETER}: "
        "no AWS credentials found (NoCredentialsError); "
    ), line
    assert "--profile" in line


def test_without_a_region_one_line_says_which_option_gives_one(tmp_path: Path) -> None:
    env = no_aws(tmp_path, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="x")
    line = one_line(herald(env, "vapid-keys", "--put", README_PARAMETER))
    assert line.endswith("no AWS region (NoRegionError); pass --region or set AWS_REGION"), line


def test_an_endpoint_nobody_answers_at_is_one_line(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    env = no_aws(
        tmp_path,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_ENDPOINT_URL=nobody,  # where boto3 sends every call (the variable the AWS CLI reads too)
        AWS_MAX_ATTEMPTS="1",
    )
    line = one_line(herald(env, "vapid-keys", "--region", "eu-west-1", "--put", README_PARAMETER))
    assert line == (
        f"herald vapid-keys: cannot store the private key as the SSM parameter {README_PARAMETER}: "
        f'Could not connect to the endpoint URL: "{nobody}/" (EndpointConnectionError)'
    )
    # The other commands too, each with its own action, the same way (here: `herald report`).
    line = one_line(herald(env, "report", "--endpoint-url", nobody))
    assert "(EndpointConnectionError)" in line and nobody in line, line


#: Every command that talks to AWS or the local cloud, with the arguments it needs.
COMMANDS = [
    ("report",),
    ("status",),
    ("outcome", "posts/harbour/p.txt"),
    ("rejected",),
    ("redrive", "ingest"),
    ("reprocess", "posts/harbour/"),
    ("republish", "harbour"),
    ("vapid-keys", "--put", README_PARAMETER),
]


@pytest.mark.parametrize("where", ["--stack", "--endpoint-url"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_command_ends_an_unreachable_endpoint_in_one_line(
    tmp_path: Path, command: tuple[str, ...], where: str
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    env = no_aws(
        tmp_path,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_ENDPOINT_URL=nobody,
        AWS_MAX_ATTEMPTS="1",
    )
    target = (
        ["--stack", "herald-dev", "--region", "eu-west-1"]
        if where == "--stack"
        else ["--endpoint-url", nobody]
    )
    line = one_line(herald(env, *command, *target))
    assert nobody in line and line.startswith("herald"), line


def test_teardown_without_credentials_or_a_region_is_one_line(tmp_path: Path) -> None:
    line = one_line(herald(no_aws(tmp_path), "teardown", "--stack", "herald-dev", "--region", "eu-west-1"))
    assert line.startswith(
        "herald teardown: cannot tear down stack herald-dev: no AWS credentials found (NoCredentialsError); "
    ), line
    env = no_aws(tmp_path, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="x")
    line = one_line(herald(env, "teardown", "--stack", "herald-dev", "--yes"))
    assert line == (
        "herald teardown: cannot tear down stack herald-dev: no AWS region (NoRegionError); "
        "pass --region or set AWS_REGION"
    )


def test_a_republish_whose_function_is_gone_names_the_command_and_the_error(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """A stack (here in the local cloud's moto) whose PublisherFunctionName names no function: Lambda's
    Invoke answers ResourceNotFoundException."""
    import json

    cloudformation = cloud.client("cloudformation")
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"PublisherFunctionName": {"Value": "herald-gone-PublisherFunction"}},
    }
    cloudformation.create_stack(StackName="herald-gone", TemplateBody=json.dumps(template))
    try:
        env = no_aws(
            tmp_path,
            AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
            AWS_SECRET_ACCESS_KEY="x",
            AWS_ENDPOINT_URL=cloud.endpoint_url,
        )
        result = herald(env, "republish", "harbour", "--stack", "herald-gone", "--region", "us-east-1")
    finally:
        cloudformation.delete_stack(StackName="herald-gone")
    line = one_line(result)
    assert line.startswith("herald republish: cannot republish harbour: "), line
    assert line.endswith("(ResourceNotFoundException)"), line


def test_an_error_of_herald_itself_keeps_its_traceback(cloud: LocalCloud, tmp_path: Path) -> None:
    """Not AWS's: the outputs the local cloud published are not JSON (as after a bug in ``herald
    local``); the traceback is what finds the bug."""
    ssm = cloud.client("ssm")
    published = ssm.get_parameter(Name=OUTPUTS_PARAMETER)["Parameter"]["Value"]
    ssm.put_parameter(Name=OUTPUTS_PARAMETER, Value="{not json", Type="String", Overwrite=True)
    try:
        result = herald(no_aws(tmp_path), "report", "--endpoint-url", cloud.endpoint_url)
    finally:
        ssm.put_parameter(Name=OUTPUTS_PARAMETER, Value=published, Type="String", Overwrite=True)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "JSONDecodeError" in result.stderr, result.stderr


def test_a_client_error_after_the_target_is_found_names_the_commands_action(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    """The outputs name a table that is not there (deleted after they were published)."""
    import json

    ssm = cloud.client("ssm")
    published = ssm.get_parameter(Name=OUTPUTS_PARAMETER)["Parameter"]["Value"]
    info = json.loads(published)
    info["outputs"]["ContentTableName"] = "herald-dev-gone"
    ssm.put_parameter(Name=OUTPUTS_PARAMETER, Value=json.dumps(info), Type="String", Overwrite=True)
    try:
        key = "posts/harbour/p.txt"
        result = herald(no_aws(tmp_path), "outcome", key, "--endpoint-url", cloud.endpoint_url)
    finally:
        ssm.put_parameter(Name=OUTPUTS_PARAMETER, Value=published, Type="String", Overwrite=True)
    line = one_line(result)
    assert line.startswith(f"herald outcome: cannot read the outcome of {key}: "), line
    assert line.endswith("(ResourceNotFoundException)"), line
