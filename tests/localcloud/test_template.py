"""The template loader and the intrinsic-function resolver."""

import pytest

from herald_tools.localcloud.template import (
    NO_VALUE,
    Resolver,
    Template,
    TemplateError,
    Unresolved,
    merge_globals,
    references,
)

from .conftest import MINI_TEMPLATE, PROJECT_TEMPLATE

PHYSICAL = {
    "IngestQueue": ("https://queue/IngestQueue", {"Arn": "arn:aws:sqs:us-east-1:123456789012:q"}),
    "ContentTable": ("content", {"Arn": "arn:table", "StreamArn": "arn:stream"}),
    "UploadsBucket": ("uploads", {"Arn": "arn:aws:s3:::uploads"}),
}


def resolver(template: Template, **overrides) -> Resolver:
    return Resolver(
        template,
        template.parameter_values(overrides),
        ref=lambda lid: PHYSICAL[lid][0],
        getatt=lambda lid, attr: PHYSICAL[lid][1][attr],
    )


@pytest.fixture(scope="module")
def mini() -> Template:
    return Template.load(MINI_TEMPLATE)


def test_short_forms_become_long_forms(mini):
    props = mini.resources["UploadsBucket"]["Properties"]
    assert props["BucketName"] == {"Fn::Sub": "herald-${Stage}-uploads-${AWS::AccountId}-${AWS::Region}"}
    queue = props["NotificationConfiguration"]["QueueConfigurations"][0]["Queue"]
    assert queue == {"Fn::GetAtt": ["IngestQueue", "Arn"]}


def test_parameters_defaults_overrides_and_lists(mini):
    values = mini.parameter_values()
    assert values["Stage"] == "dev"
    assert values["MaxPostBytes"] == "65536"  # Ref of a Number parameter is a string
    assert values["Extras"] == ["a", "b", "c"]
    assert mini.parameter_values({"Stage": "prod"})["Stage"] == "prod"
    with pytest.raises(TemplateError):
        mini.parameter_values({"Stage": "qa"})  # not in AllowedValues
    with pytest.raises(TemplateError):
        mini.parameter_values({"Nope": "x"})


def test_sub_with_pseudo_parameters_and_escapes(mini):
    r = resolver(mini)
    assert r.resolve({"Fn::Sub": "herald-${Stage}-uploads-${AWS::AccountId}-${AWS::Region}"}) == (
        "herald-dev-uploads-123456789012-us-east-1"
    )
    assert r.resolve({"Fn::Sub": "arn:${AWS::Partition}:x:${AWS::StackName}"}) == "arn:aws:x:herald-dev"
    assert r.resolve({"Fn::Sub": "${!NotAVariable}"}) == "${NotAVariable}"
    assert r.resolve({"Fn::Sub": "${ContentTable.Arn}/index/*"}) == "arn:table/index/*"
    assert r.resolve({"Fn::Sub": ["${X}-${UploadsBucket}", {"X": {"Ref": "Stage"}}]}) == "dev-uploads"


def test_ref_getatt_and_functions(mini):
    r = resolver(mini)
    assert r.resolve({"Ref": "IngestQueue"}) == "https://queue/IngestQueue"
    assert r.resolve({"Fn::GetAtt": ["ContentTable", "StreamArn"]}) == "arn:stream"
    assert r.resolve({"Fn::GetAtt": "ContentTable.Arn"}) == "arn:table"
    assert r.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-dev"
    assert r.resolve({"Fn::Select": [1, {"Ref": "Extras"}]}) == "b"
    assert r.resolve({"Fn::Split": [",", "x,y"]}) == ["x", "y"]
    assert r.resolve({"Fn::FindInMap": ["StageSettings", {"Ref": "Stage"}, "LogDays"]}) == 7
    assert r.resolve({"Fn::GetAZs": ""})[0] == "us-east-1a"
    assert r.resolve({"Fn::Base64": "hi"}) == "aGk="
    assert r.resolve({"Fn::If": ["IsProd", "yes", {"Ref": "AWS::NoValue"}]}) is NO_VALUE
    assert r.resolve({"A": {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]}, "B": 2}) == {"B": 2}
    with pytest.raises(Unresolved):
        r.resolve({"Fn::ImportValue": "other-stack-output"})


def test_conditions(mini):
    assert resolver(mini).condition("IsProd") is False
    assert resolver(mini).condition("IsNotProd") is True
    prod = resolver(mini, Stage="prod")
    assert prod.condition("IsProd") is True
    assert prod.resource_enabled("SiteSetting") is False


def test_globals_merge_into_functions(mini):
    props = mini.resource_properties("IngestFunction")
    assert props["Runtime"] == "python3.13"
    assert props["Timeout"] == 60  # the function's own value wins
    assert props["MemorySize"] == 256
    env = props["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "herald"
    assert env["CONTENT_TABLE"] == {"Ref": "ContentTable"}
    assert merge_globals({"L": [1], "M": {"a": 1}}, {"L": [2], "M": {"b": 2}}) == {
        "L": [1, 2],
        "M": {"a": 1, "b": 2},
    }


def test_references_skip_parameters_and_see_sub_variables(mini):
    known = set(mini.resources)
    props = mini.resource_properties("IngestFunction")
    assert references(props, known) >= {"ContentTable", "UploadsBucket", "IngestQueue", "AlarmTopic"}
    assert "Stage" not in references(props, known)
    policy = mini.resources["IngestQueuePolicy"]["Properties"]
    assert references(policy, known) == {"IngestQueue"}


@pytest.mark.skipif(not PROJECT_TEMPLATE.exists(), reason="template.yaml not written yet")
def test_the_project_template_loads_and_its_names_resolve():
    template = Template.load(PROJECT_TEMPLATE)
    assert {"UploadsBucket", "IngestQueue", "IngestDeadLetterQueue", "ContentTable", "IngestFunction"} <= set(
        template.resources
    )
    r = resolver(template)
    bucket = template.resources["UploadsBucket"]["Properties"]["BucketName"]
    assert r.resolve(bucket) == "herald-dev-uploads-123456789012-us-east-1"
    env = r.resolve(template.resource_properties("IngestFunction")["Environment"])["Variables"]
    assert env["CONTENT_TABLE"] == "content"
    assert env["UPLOADS_BUCKET"] == "uploads"


def test_a_template_is_decoded_without_cfn_lint_in_the_process(tmp_path):
    """cfn-lint decodes in a child process (it would stay in ``herald local`` for good); the data is
    the same as cfn-lint's in process, and a template it cannot decode is a TemplateError."""
    import json
    import subprocess
    import sys

    from cfnlint.decode import decode_str

    text = PROJECT_TEMPLATE.read_text(encoding="utf-8")
    script = (
        "import json, sys\n"
        "from herald_tools.localcloud.template import Template\n"
        f"body = Template.load({str(PROJECT_TEMPLATE)!r}).body\n"
        "json.dump({'body': body, 'cfnlint': 'cfnlint' in sys.modules}, sys.stdout)\n"
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    answer = json.loads(child.stdout)
    assert answer["cfnlint"] is False
    in_process, _ = decode_str(text)
    assert answer["body"] == json.loads(json.dumps(in_process, default=str))
    assert Template.load(PROJECT_TEMPLATE).body == answer["body"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("Resources:\n  A: [\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="cannot decode"):
        Template.load(broken)
