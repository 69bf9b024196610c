"""template.yaml: a join flood meets per-client rate limits (WAF, on in prod) and cannot take more than
the API function's reserved concurrency."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from herald_tools.localcloud.template import Resolver, Template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(ROOT / "template.yaml")


def _resolver(template: Template, **overrides: str) -> Resolver:
    values = {name: spec.get("Default") for name, spec in template.parameters.items()}
    values.update(overrides)
    return Resolver(template=template, parameters=values)


def _samconfig_parameters(env: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    pairs = config[env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(p.split("=", 1) for p in pairs)


def test_the_web_acl_is_on_in_prod_and_off_in_dev(template: Template) -> None:
    assert _resolver(template, Stage="prod").condition("ApiWebAclOn")
    assert not _resolver(template, Stage="dev").condition("ApiWebAclOn")
    assert _resolver(template, Stage="dev", ApiWebAcl="on").condition("ApiWebAclOn")
    assert not _resolver(template, Stage="prod", ApiWebAcl="off").condition("ApiWebAclOn")
    prod = _samconfig_parameters("prod")
    assert _resolver(template, **prod).condition("ApiWebAclOn")
    assert not _resolver(template, **_samconfig_parameters("dev")).condition("ApiWebAclOn")


def test_rate_based_rules_per_ip_block_with_429(template: Template) -> None:
    resources = template.resources
    acl = resources["ApiRateLimits"]
    assert acl["Type"] == "AWS::WAFv2::WebACL" and acl["Condition"] == "ApiWebAclOn"
    props: dict[str, Any] = acl["Properties"]
    assert props["Scope"] == "REGIONAL" and "Allow" in props["DefaultAction"]
    rules = {r["Name"]: r for r in props["Rules"]}
    assert set(rules) == {"joins-per-ip", "requests-per-ip"}
    for rule, limit in (("joins-per-ip", "ApiJoinRateLimitPerIp"), ("requests-per-ip", "ApiRateLimitPerIp")):
        statement = rules[rule]["Statement"]["RateBasedStatement"]
        assert statement["AggregateKeyType"] == "IP"
        assert statement["Limit"] == {"Ref": limit}
        assert rules[rule]["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    joins = rules["joins-per-ip"]["Statement"]["RateBasedStatement"]["ScopeDownStatement"]["AndStatement"]
    matches = {s["ByteMatchStatement"]["SearchString"] for s in joins["Statements"]}
    assert matches == {"POST", "/members"}
    association = resources["ApiWebAclAssociation"]
    assert association["Type"] == "AWS::WAFv2::WebACLAssociation"
    assert association["Condition"] == "ApiWebAclOn"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["ApiRateLimits", "Arn"]}
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert "/restapis/${HeraldApi}/stages/${HeraldApi.Stage}" in arn


def test_the_api_function_has_reserved_concurrency(template: Template) -> None:
    props = template.resources["ApiFunction"]["Properties"]
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasApiReservedConcurrency", {"Ref": "ApiReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert int(template.parameters["ApiReservedConcurrency"]["Default"]) > 0
    assert _resolver(template).condition("HasApiReservedConcurrency")
    assert not _resolver(template, ApiReservedConcurrency="0").condition("HasApiReservedConcurrency")
