"""Read a SAM/CloudFormation template and resolve its intrinsic functions locally.

The template is decoded with cfn-lint's decoder (in a child process, see :func:`_decoded`), which
understands the short forms
(``!Ref``, ``!Sub``, ``!GetAtt`` ...) and turns them into their long forms
(``{"Ref": ...}``, ``{"Fn::Sub": ...}``, ``{"Fn::GetAtt": [res, attr]}``).  What is
left is plain data plus a :class:`Resolver` that evaluates intrinsics against the
local physical ids (names, ARNs, URLs) of the resources once they exist.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
# The stack the local cloud plays: the one `sam deploy` creates for the default stage (samconfig.toml),
# so that every name is the one CloudFormation gives on AWS, less its random suffix.
STACK_NAME = "herald-dev"


class TemplateError(Exception):
    """The template cannot be read or one of its expressions cannot be resolved."""


class Unresolved(TemplateError):
    """An intrinsic refers to something that does not exist (yet)."""


class _NoValue:
    """``AWS::NoValue``: removes the property or list item it stands in."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

INTRINSICS = frozenset(
    {
        "Ref",
        "Condition",
        "Fn::GetAtt",
        "Fn::Sub",
        "Fn::Join",
        "Fn::Select",
        "Fn::Split",
        "Fn::If",
        "Fn::Equals",
        "Fn::Not",
        "Fn::And",
        "Fn::Or",
        "Fn::FindInMap",
        "Fn::ImportValue",
        "Fn::Base64",
        "Fn::GetAZs",
        "Fn::ToJsonString",
        "Fn::Length",
        "Fn::Cidr",
    }
)


#: Decodes the template text on stdin with cfn-lint; prints the plain data (the decoder's node
#: classes carry line marks; plain data is easier to copy and compare) and the problems found.
_DECODE = """
import json, sys
from cfnlint.decode import decode_str
template, matches = decode_str(sys.stdin.read())
json.dump({"template": template, "problems": [str(m) for m in matches or []]}, sys.stdout, default=str)
"""


@functools.lru_cache(maxsize=32)
def _decoded(text: str) -> str:
    """The JSON :data:`_DECODE` prints for ``text``, decoded in a child process unless cfn-lint is
    already imported here: cfn-lint and what it imports (sympy, networkx, the SAM translator, its
    schemas) take some 60 MB, which a long-lived process such as ``herald local`` would otherwise
    hold to the end for one decoding at its start."""
    if "cfnlint" in sys.modules:
        from cfnlint.decode import decode_str

        template, matches = decode_str(text)
        return json.dumps({"template": template, "problems": [str(m) for m in matches or []]}, default=str)
    child = subprocess.run(
        [sys.executable, "-c", _DECODE], input=text, capture_output=True, text=True, encoding="utf-8"
    )
    if child.returncode != 0:
        raise TemplateError(f"the template decoder failed: {child.stderr.strip()[-2000:]}")
    return child.stdout


def load_template_text(text: str, filename: str = "template.yaml") -> dict[str, Any]:
    """Decode YAML or JSON template text with CloudFormation tags into plain dicts and lists."""
    decoded = json.loads(_decoded(text))  # a fresh copy each time: callers may change it
    template, problems = decoded["template"], decoded["problems"]
    if template is None or problems:
        raise TemplateError(f"cannot decode {filename}: {'; '.join(problems)}")
    return template


@dataclass
class Template:
    """A decoded template plus where it lives (CodeUri and ContentUri are relative to it)."""

    path: Path | None
    body: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> Template:
        p = Path(path).resolve()
        return cls(path=p, body=load_template_text(p.read_text(encoding="utf-8"), str(p)))

    @classmethod
    def from_text(cls, text: str, base_dir: str | Path | None = None) -> Template:
        base = Path(base_dir).resolve() / "template.yaml" if base_dir else None
        return cls(path=base, body=load_template_text(text))

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    @property
    def parameters(self) -> dict[str, Any]:
        return self.body.get("Parameters") or {}

    @property
    def conditions(self) -> dict[str, Any]:
        return self.body.get("Conditions") or {}

    @property
    def mappings(self) -> dict[str, Any]:
        return self.body.get("Mappings") or {}

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources") or {}

    @property
    def outputs(self) -> dict[str, Any]:
        return self.body.get("Outputs") or {}

    @property
    def globals(self) -> dict[str, Any]:
        return self.body.get("Globals") or {}

    def parameter_values(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Each parameter's value: the override if given, else its Default (lists split for list types)."""
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(self.parameters)
        if unknown:
            raise TemplateError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            spec = spec or {}
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default and no value was given")
            ptype = str(spec.get("Type", "String"))
            if (ptype == "CommaDelimitedList" or ptype.startswith("List<")) and isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else []
            elif isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int | float):
                value = str(value)
            allowed = spec.get("AllowedValues")
            if (
                allowed is not None
                and not isinstance(value, list)
                and str(value) not in [str(a) for a in allowed]
            ):
                raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
            values[name] = value
        return values

    def resource_properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's Properties, with the template's Globals merged in for serverless resources."""
        resource = self.resources[logical_id]
        props = copy.deepcopy(resource.get("Properties") or {})
        rtype = resource.get("Type", "")
        section = {
            "AWS::Serverless::Function": "Function",
            "AWS::Serverless::Api": "Api",
            "AWS::Serverless::HttpApi": "HttpApi",
            "AWS::Serverless::SimpleTable": "SimpleTable",
            "AWS::Serverless::StateMachine": "StateMachine",
        }.get(rtype)
        if section and section in self.globals:
            props = merge_globals(self.globals[section] or {}, props)
        return props


def merge_globals(global_props: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge (resource wins), lists concatenate, scalars are overridden."""
    merged: dict[str, Any] = copy.deepcopy(dict(global_props))
    for key, value in props.items():
        if key not in merged:
            merged[key] = copy.deepcopy(value)
            continue
        base = merged[key]
        if _is_plain_map(base) and _is_plain_map(value):
            merged[key] = merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = base + copy.deepcopy(value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _is_plain_map(value: Any) -> bool:
    return isinstance(value, dict) and not is_intrinsic(value)


def is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in INTRINSICS


# --------------------------------------------------------------------------------------------
# References: which resources an expression needs (for ordering the creation of resources)
# --------------------------------------------------------------------------------------------

_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


def references(value: Any, known: Mapping[str, Any] | set[str]) -> set[str]:
    """The logical ids of resources among ``known`` that ``value`` refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()

    def walk(node: Any, sub_vars: frozenset[str] = frozenset()) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, sub_vars)
            return
        if not isinstance(node, dict):
            return
        if is_intrinsic(node):
            fn, arg = next(iter(node.items()))
            if fn == "Ref" and isinstance(arg, str) and arg in known:
                found.add(arg)
                return
            if fn == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
                if target in known:
                    found.add(target)
                return
            if fn == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] or {})
                for name in _SUB_VAR.findall(text):
                    head = name.split(".", 1)[0]
                    if head in known and name not in variables:
                        found.add(head)
                walk(variables)
                return
        for item in node.values():
            walk(item, sub_vars)

    walk(value)
    return found


# --------------------------------------------------------------------------------------------
# Resolver
# --------------------------------------------------------------------------------------------

RefLookup = Callable[[str], Any]
AttLookup = Callable[[str, str], Any]


@dataclass
class Resolver:
    """Evaluates intrinsic functions.

    ``ref`` and ``getatt`` answer for resources; they raise :class:`Unresolved` (or KeyError)
    when a resource has no physical id yet.
    """

    template: Template
    parameters: dict[str, Any]
    ref: RefLookup | None = None
    getatt: AttLookup | None = None
    account_id: str = ACCOUNT_ID
    region: str = REGION
    partition: str = PARTITION
    stack_name: str = STACK_NAME
    rewrite: Callable[[str], str] | None = None  # applied to every string an intrinsic yields
    _conditions: dict[str, bool] = field(default_factory=dict)

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:"
                f"stack/{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }[name]

    # -- conditions -------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.template.conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self.template.conditions[name]))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        cond = self.template.resources[logical_id].get("Condition")
        return True if cond is None else self.condition(cond)

    # -- Ref / GetAtt -----------------------------------------------------------------------
    def resolve_ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            try:
                return self.pseudo(name)
            except KeyError:
                raise TemplateError(f"unknown pseudo parameter {name}") from None
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.resources:
            if self.ref is None:
                raise Unresolved(f"Ref {name}: resources are not resolvable here")
            try:
                return self.ref(name)
            except KeyError:
                raise Unresolved(f"Ref {name}: no physical id yet") from None
        raise TemplateError(f"Ref to unknown name {name}")

    def resolve_getatt(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.template.resources:
            raise TemplateError(f"GetAtt of unknown resource {logical_id}")
        if self.getatt is None:
            raise Unresolved(f"GetAtt {logical_id}.{attribute}: resources are not resolvable here")
        try:
            return self.getatt(logical_id, attribute)
        except KeyError:
            raise Unresolved(f"GetAtt {logical_id}.{attribute}: not available") from None

    # -- everything ---------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in ``value``; ``AWS::NoValue`` removes keys and list items."""
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if is_intrinsic(value):
            fn, arg = next(iter(value.items()))
            resolved = self._intrinsic(fn, arg)
            if self.rewrite is not None and isinstance(resolved, str):
                resolved = self.rewrite(resolved)
            return resolved
        result = {}
        for key, item in value.items():
            resolved = self.resolve(item)
            if resolved is not NO_VALUE:
                result[key] = resolved
        return result

    def _intrinsic(self, fn: str, arg: Any) -> Any:
        if fn == "Ref":
            return self.resolve_ref(self.resolve(arg))
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::GetAtt":
            if isinstance(arg, str):
                logical_id, _, attribute = arg.partition(".")
            else:
                logical_id, attribute = arg[0], self.resolve(arg[1])
            return self.resolve_getatt(logical_id, attribute)
        if fn == "Fn::Sub":
            return self._sub(arg)
        if fn == "Fn::Join":
            sep, items = arg
            items = self.resolve(items)
            return str(self.resolve(sep)).join(_scalar_str(i) for i in items)
        if fn == "Fn::Select":
            index, items = self.resolve(arg[0]), self.resolve(arg[1])
            return items[int(index)]
        if fn == "Fn::Split":
            sep, text = self.resolve(arg[0]), self.resolve(arg[1])
            return str(text).split(sep)
        if fn == "Fn::If":
            cond, when_true, when_false = arg
            return self.resolve(when_true if self.condition(cond) else when_false)
        if fn == "Fn::Equals":
            a, b = self.resolve(arg[0]), self.resolve(arg[1])
            return _scalar_str(a) == _scalar_str(b)
        if fn == "Fn::Not":
            return not self._truth(arg[0])
        if fn == "Fn::And":
            return all(self._truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in arg)
        if fn == "Fn::FindInMap":
            m, k1, k2 = (self.resolve(a) for a in arg[:3])
            try:
                return self.template.mappings[m][k1][k2]
            except KeyError:
                if len(arg) > 3 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                    return self.resolve(arg[3]["DefaultValue"])
                raise TemplateError(f"FindInMap {m}/{k1}/{k2} not found") from None
        if fn == "Fn::ImportValue":
            raise Unresolved(f"ImportValue {self.resolve(arg)}: no other stacks exist locally")
        if fn == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if fn == "Fn::GetAZs":
            region = self.resolve(arg) or self.region
            return [f"{region}{z}" for z in "abc"]
        if fn == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if fn == "Fn::Length":
            return len(self.resolve(arg))
        raise TemplateError(f"{fn} is not supported locally")

    def _truth(self, node: Any) -> bool:
        if isinstance(node, dict) and set(node) == {"Condition"}:
            return self.condition(node["Condition"])
        value = self.resolve(node)
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, variables = arg[0], {k: self.resolve(v) for k, v in (arg[1] or {}).items()}

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return _scalar_str(variables[inner])
            if "." in inner and not inner.startswith("AWS::"):
                logical_id, attribute = inner.split(".", 1)
                return _scalar_str(self.resolve_getatt(logical_id, attribute))
            return _scalar_str(self.resolve_ref(inner))

        return re.sub(r"\$\{([^}]*)\}", replace, text)


def _scalar_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_scalar_str(v) for v in value)
    return str(value)
