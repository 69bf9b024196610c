"""Provisioning what the API needs: REST APIs and their routes, secrets, local push applications."""

from __future__ import annotations

import json
import string

import boto3
import pytest
from moto import mock_aws

from herald_tools.localcloud.provision import generate_secret_string, provision, template_has_api_events
from herald_tools.localcloud.template import Template

from .conftest import API_TEMPLATE, RECORDER_TEMPLATE


@pytest.fixture
def session():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def test_rest_api_routes_and_local_url(session):
    res = provision(API_TEMPLATE, session, api_url="http://127.0.0.1:3999/")
    api = res.apis["EchoApi"]
    assert api.api_id == res["EchoApi"] == res.outputs["ApiId"]
    assert api.stage == "test"
    assert api.binary_media_types == ["image/png"]  # SAM's ~1 is a /
    assert api.cors == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": "Content-Type,Authorization",
        "Access-Control-Max-Age": "600",
    }
    routes = {(r.method, r.path) for r in api.routes}
    assert ("GET", "/items/{id}") in routes and ("ANY", "/files/{proxy+}") in routes
    assert ("DELETE", "/items/{id}/members/{member_id}") in routes
    assert all(r.function == "EchoFunction" for r in api.routes)
    # execute-api URLs become the local API's URL, without the stage prefix.
    assert res.outputs["ApiUrl"] == "http://127.0.0.1:3999"
    assert res.functions["EchoFunction"].environment["PUBLIC_API_URL"] == "http://127.0.0.1:3999"
    assert res.api_url == "http://127.0.0.1:3999"
    assert "EchoApi" not in res.skipped


def test_without_a_local_api_url_the_aws_url_is_kept(session):
    res = provision(API_TEMPLATE, session)
    assert res.outputs["ApiUrl"] == f"https://{res['EchoApi']}.execute-api.us-east-1.amazonaws.com/test"


def test_secrets(session):
    res = provision(API_TEMPLATE, session)
    sm = session.client("secretsmanager")
    token_arn = res.outputs["TokenSecretArn"]
    assert token_arn.startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:herald-dev-TokenSecret")
    assert res.attr("TokenSecret", "Id") == token_arn
    token = sm.get_secret_value(SecretId=token_arn)["SecretString"]
    assert len(token) == 48 and set(token) <= set(string.ascii_letters + string.digits)
    assert res.functions["EchoFunction"].environment["TOKEN_SECRET_ARN"] == token_arn
    templated = json.loads(sm.get_secret_value(SecretId="herald-test-templated")["SecretString"])
    assert templated["username"] == "herald" and len(templated["password"]) == 20
    assert not set(templated["password"]) & set('"@/\\')
    plain = sm.get_secret_value(SecretId=res["PlainSecret"])["SecretString"]
    assert json.loads(plain) == {"api_key": "k-123"}


def test_generate_secret_string_options():
    for _ in range(20):
        value = generate_secret_string(
            {"PasswordLength": 12, "ExcludeNumbers": True, "ExcludeUppercase": True}
        )
        assert len(value) == 12 and not any(c.isdigit() or c.isupper() for c in value)
        assert any(c.islower() for c in value) and any(not c.isalnum() for c in value)  # each type
    assert len(generate_secret_string({})) == 32
    assert generate_secret_string({}) != generate_secret_string({})
    assert " " in generate_secret_string(
        {"PasswordLength": 8, "IncludeSpace": True, "ExcludeLowercase": True, "ExcludeUppercase": True}
    )


def test_local_platform_applications_for_empty_push_parameters(session):
    res = provision(API_TEMPLATE, session)
    sns = session.client("sns")
    apps = {a["PlatformApplicationArn"] for a in sns.list_platform_applications()["PlatformApplications"]}
    fcm, apns = res.parameters["FcmPlatformApplicationArn"], res.parameters["ApnsPlatformApplicationArn"]
    assert fcm == "arn:aws:sns:us-east-1:123456789012:app/GCM/herald-dev-fcm"
    assert apns == "arn:aws:sns:us-east-1:123456789012:app/APNS/herald-dev-apns"
    assert apps == {fcm, apns}
    # Conditions see the value: FCM_ARN is set only when the parameter is not empty.
    assert res.functions["EchoFunction"].environment["FCM_ARN"] == fcm
    endpoint = sns.create_platform_endpoint(PlatformApplicationArn=fcm, Token="device-token")
    assert endpoint["EndpointArn"].startswith(
        "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/herald-dev-fcm/"
    )


def test_given_push_parameters_are_kept(session):
    given = "arn:aws:sns:us-east-1:123456789012:app/GCM/real"
    res = provision(API_TEMPLATE, session, parameters={"FcmPlatformApplicationArn": given})
    assert res.parameters["FcmPlatformApplicationArn"] == given
    names = [
        a["PlatformApplicationArn"]
        for a in session.client("sns").list_platform_applications()["PlatformApplications"]
    ]
    assert names == [res.parameters["ApnsPlatformApplicationArn"]]


def test_no_local_platform_applications_when_asked(session):
    res = provision(API_TEMPLATE, session, local_platform_applications=False)
    assert res.parameters["FcmPlatformApplicationArn"] == ""
    assert res.functions["EchoFunction"].environment["FCM_ARN"] == "none"


def test_implicit_api_and_detection():
    template = Template.from_text(
        """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.11
      Events:
        Root: {Type: Api, Properties: {Path: /, Method: get}}
"""
    )
    assert template_has_api_events(template)
    assert not template_has_api_events(Template.load(RECORDER_TEMPLATE))
    with mock_aws():
        res = provision(template, boto3.Session(region_name="us-east-1"))
    api = res.apis["ServerlessRestApi"]
    assert api.stage == "Prod" and [(r.method, r.path) for r in api.routes] == [("GET", "/")]
