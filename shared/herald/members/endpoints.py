"""The push endpoint policy: which URLs Herald will ever send a push message to, in one place.

A push endpoint is a URL a client hands in, and Herald later POSTs to it: without a policy it is a
server-side request forgery waiting to happen (the instance metadata service, a database on the
VPC, a port scan through the fan-out). The same rules apply when a member joins and again when a
message is sent, because a host name can resolve elsewhere by then (DNS rebinding):

* ``https`` only, on a host *name* (no IP literal), with no user name or password, on an allowed
  port (443 unless the stack allows more), and not a local-only name (``localhost``, ``*.local``,
  ``*.internal``, a name without a dot, ...).
* Given a resolver, every address the name resolves to must be public (``ipaddress``'s
  ``is_global``, and not multicast), IPv4-mapped and NAT64 IPv6 addresses judged by the IPv4
  address inside them: no loopback, private, shared, link-local (``169.254.169.254``), unique local
  (``fd00::/8``) or reserved address.
* The local cloud's push service listens on loopback over plain http; that is allowed only with
  :attr:`EndpointPolicy.allow_loopback` (``ALLOW_LOOPBACK_PUSH=true``, which only the local cloud
  sets), and then only for loopback hosts.

:func:`normalise_endpoint` is a subscription's identity: one browser's endpoint written with a
different case of scheme or host, the default port, a fragment or a trailing slash is one
subscription. The query is kept: Windows' push service (WNS, used by Edge) carries the
subscription's token in it (``https://wns2-par02p.notify.windows.com/w/?token=...``), so two
endpoints that differ in their query are two subscriptions; FCM, Mozilla's autopush and Apple's
service put the token in the path and use no query.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator

from herald.core.settings import Settings

__all__ = [
    "EndpointPolicy",
    "EndpointSettings",
    "EndpointUnresolvable",
    "UnsafeEndpoint",
    "check_address",
    "check_endpoint",
    "normalise_endpoint",
    "system_resolve",
]

Resolver = Callable[[str, int], list[str]]

_DEFAULT_PORTS = {"https": 443, "http": 80}
#: Names that never belong to a public push service (RFC 6761, 6762, 8375 and common internal zones).
_LOCAL_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "home.arpa",
    "localdomain",
    "invalid",
    "onion",
)
#: A host name's label (RFC 1123; "_" as some services use): checked label by label, after splitting.
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
#: IPv6 prefixes that embed an IPv4 address, judged by that address (RFC 6052 NAT64, RFC 8215).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class UnsafeEndpoint(ValueError):
    """A push endpoint Herald will not send to; the message names the problem."""


class EndpointUnresolvable(UnsafeEndpoint):
    """The endpoint's host name did not resolve (no such name, or no answer): maybe transient."""


@dataclass(frozen=True)
class EndpointPolicy:
    """What the stack allows beyond the default: loopback push services, and ports other than 443."""

    allow_loopback: bool = False
    allowed_ports: frozenset[int] = field(default_factory=lambda: frozenset({443}))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> EndpointPolicy:
        """``ALLOW_LOOPBACK_PUSH`` (``true``/``1``/``yes``; the local cloud sets it) and
        ``PUSH_ALLOWED_PORTS`` (comma-separated, default ``443``), as :class:`EndpointSettings` reads them."""
        return EndpointSettings.from_env(environ).endpoint_policy


def _flag(raw: Any) -> Any:
    """``ALLOW_LOOPBACK_PUSH``: on only when ``1``, ``true``, ``yes`` or ``on``; anything else is off."""
    if isinstance(raw, str):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw


def _ports(raw: Any) -> Any:
    """``PUSH_ALLOWED_PORTS``: comma-separated ports, each 1 to 65535; unset or empty is ``443``."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if not text:
        return frozenset({443})
    try:
        ports = frozenset(int(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"PUSH_ALLOWED_PORTS must list ports, not {text!r}") from exc
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise ValueError(f"PUSH_ALLOWED_PORTS must be ports 1 to 65535, not {text!r}")
    return ports


class EndpointSettings(Settings):
    """The endpoint policy's part of a function's environment: the API (at join) and the push sender
    (at send) derive their settings from it, so both read the variables the same way."""

    allow_loopback_push: Annotated[bool, BeforeValidator(_flag)] = False
    push_allowed_ports: Annotated[frozenset[int], BeforeValidator(_ports)] = frozenset({443})

    @property
    def endpoint_policy(self) -> EndpointPolicy:
        return EndpointPolicy(allow_loopback=self.allow_loopback_push, allowed_ports=self.push_allowed_ports)


#: A space or a control character (C0 and DEL): never in a browser's endpoint. One compiled search,
#: not a Python loop per character (the planner checks every member's endpoint).
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def _split(url: str) -> tuple[str, str, int | None, str, str]:
    """scheme, host (lowercase, IDNA-encoded, no brackets), explicit port, path, query; or UnsafeEndpoint."""
    if not isinstance(url, str) or not url:
        raise UnsafeEndpoint("must be an https URL")
    if not url.isascii():
        # A browser serialises its endpoint as ASCII (percent-encoded path, punycode host).
        raise UnsafeEndpoint("must be ASCII, with other characters percent-encoded")
    if _CONTROL_OR_SPACE.search(url):
        raise UnsafeEndpoint("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeEndpoint(f"is not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeEndpoint("must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeEndpoint("must not carry a user name or password")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeEndpoint("must name a host")
    if _ip(host) is None:
        host = host.rstrip(".")  # the root label: fcm.googleapis.com. is fcm.googleapis.com
        labels = host.split(".")
        if len(host) > 253 or not all(len(x) <= 63 and _LABEL.fullmatch(x) for x in labels):
            raise UnsafeEndpoint(f"host {host!r} is not a valid host name")
    if port == _DEFAULT_PORTS[scheme]:
        port = None
    return scheme, host, port, parts.path, parts.query


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def normalise_endpoint(url: str) -> str:
    """The subscription identity of a push endpoint (raises :class:`UnsafeEndpoint` if not a URL).

    Scheme and host lowercased, the default port and the fragment dropped,
    trailing slashes of the path dropped, the query kept as written (see the module docstring);
    an empty query (a bare ``?``) is dropped.
    """
    scheme, host, port, path, query = _split(url)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, path.rstrip("/"), query, ""))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def check_address(address: str, policy: EndpointPolicy) -> None:
    """Raises :class:`UnsafeEndpoint` unless ``address`` (an IP address) is one Herald may push to."""
    ip = _ip(address)
    if ip is None:
        raise UnsafeEndpoint(f"resolves to {address!r}, not an IP address")
    judged: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        # A translation of an IPv4 address (mapped, NAT64) is that address; a tunnel (6to4,
        # Teredo) must be public on both sides.
        translated = ip.ipv4_mapped is not None or any(ip in net for net in _NAT64)
        judged = [inner] if translated else [inner, ip]
    for one in judged:
        if one.is_loopback:
            if policy.allow_loopback:
                continue
            raise UnsafeEndpoint(f"resolves to {address}, a loopback address")
        kind = _address_kind(one)
        if kind is not None:
            raise UnsafeEndpoint(f"resolves to {address}, {kind}")


def _address_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is not a public unicast address, or None if it is."""
    if ip.is_link_local:
        return "a link-local address (the instance metadata service lives there)"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a public address"
    return None


def _name_problem(host: str) -> str | None:
    """Why ``host`` (not an IP literal) cannot be a public push service's name, or None."""
    if "." not in host:
        # A single label resolves through the resolver's search domains: an internal name.
        return f"host {host!r} is not a public host name"
    if any(host == s or host.endswith("." + s) for s in _LOCAL_SUFFIXES):
        return f"host {host!r} is not a public host name"
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        # No top-level domain is numeric: inet_aton would read 0x7f.1 or 127.1 as an address.
        return f"host {host!r} is an IP address in another notation"
    return None


def check_endpoint(url: str, policy: EndpointPolicy, *, resolve: Resolver | None = None) -> str:
    """The normalised endpoint (:func:`normalise_endpoint`) if Herald may push to ``url``; else
    :class:`UnsafeEndpoint` naming the problem.

    With ``resolve`` (``host, port -> addresses``, e.g. :func:`system_resolve`), every address the
    host resolves to must be public too; a resolver that finds nothing raises
    :class:`EndpointUnresolvable`. The returned URL is the identity; send to the endpoint as the
    browser gave it (minus any fragment), which may differ from it only in a trailing slash.
    """
    normalised = normalise_endpoint(url)
    scheme, host, port, _, _ = _split(normalised)
    ip = _ip(host)
    loopback_host = (ip is not None and ip.is_loopback) or host == "localhost" or host.endswith(".localhost")
    if loopback_host and policy.allow_loopback:
        # The local cloud's push service: plain http and any port, on loopback only.
        if resolve is not None:
            for address in _resolved(resolve, host, port or _DEFAULT_PORTS[scheme]):
                check_address(address, policy)
        return normalised
    if scheme != "https":
        raise UnsafeEndpoint("must be an https URL")
    if ip is not None:
        raise UnsafeEndpoint(f"host {host} is an IP address; a push service is named by a host name")
    if (problem := _name_problem(host)) is not None:
        raise UnsafeEndpoint(problem)
    effective_port = port or 443
    if effective_port not in policy.allowed_ports:
        raise UnsafeEndpoint(f"port {effective_port} is not allowed")
    if resolve is not None:
        for address in _resolved(resolve, host, effective_port):
            check_address(address, policy)
    return normalised


def _resolved(resolve: Resolver, host: str, port: int) -> list[str]:
    try:
        addresses = resolve(host, port)
    except EndpointUnresolvable:
        raise
    except (OSError, UnicodeError) as exc:
        raise EndpointUnresolvable(f"host {host!r} does not resolve ({exc})") from exc
    if not addresses:
        raise EndpointUnresolvable(f"host {host!r} does not resolve")
    return addresses


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (``socket.getaddrinfo``), for :func:`check_endpoint`."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
