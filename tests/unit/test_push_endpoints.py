"""The push endpoint policy: one subscription per browser endpoint, and no request to a private host."""

from __future__ import annotations

import socket

import pytest

from herald.members.endpoints import (
    EndpointPolicy,
    EndpointUnresolvable,
    UnsafeEndpoint,
    check_address,
    check_endpoint,
    normalise_endpoint,
)

STRICT = EndpointPolicy()
LOCAL = EndpointPolicy(allow_loopback=True)
FCM = "https://fcm.googleapis.com/fcm/send/dXJ0aGVy:APA91b"


@pytest.mark.parametrize(
    "written",
    [
        FCM,
        FCM + "/",
        FCM + "#anything",
        FCM + "?",
        "HTTPS://FCM.GoogleAPIs.COM/fcm/send/dXJ0aGVy:APA91b",
        "https://fcm.googleapis.com:443/fcm/send/dXJ0aGVy:APA91b//",
        "https://fcm.googleapis.com./fcm/send/dXJ0aGVy:APA91b",
    ],
)
def test_one_endpoint_written_many_ways_is_one_identity(written: str) -> None:
    assert normalise_endpoint(written) == FCM
    assert check_endpoint(written, STRICT) == FCM


def test_the_query_is_part_of_the_identity() -> None:
    # WNS (Edge) carries the subscription's token in the query: two tokens, two subscriptions.
    a = normalise_endpoint("https://wns2-par02p.notify.windows.com/w/?token=AAA")
    b = normalise_endpoint("https://wns2-par02p.notify.windows.com/w/?token=BBB")
    assert a == "https://wns2-par02p.notify.windows.com/w?token=AAA"
    assert a != b
    assert normalise_endpoint("https://WNS2-par02p.notify.windows.com/w?token=AAA#x") == a


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://fcm.googleapis.com/fcm/send/x", "must be an https URL"),
        ("ftp://fcm.googleapis.com/x", "must be an https URL"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is an IP address"),
        ("https://[fd00::1]/x", "fd00::1 is an IP address"),
        ("https://[::ffff:10.0.0.5]/x", "is an IP address"),
        ("https://10.0.0.5/x", "10.0.0.5 is an IP address"),
        ("https://127.0.0.1/x", "127.0.0.1 is an IP address"),
        ("https://localhost/x", "'localhost' is not a public host name"),
        ("https://push.localhost/x", "not a public host name"),
        ("https://metadata/computeMetadata/v1/", "'metadata' is not a public host name"),
        ("https://metadata.google.internal/x", "not a public host name"),
        ("https://printer.local/x", "not a public host name"),
        ("https://0x7f.1/x", "an IP address in another notation"),
        ("https://127.1/x", "an IP address in another notation"),
        ("https://fcm.googleapis.com:8443/x", "port 8443 is not allowed"),
        ("https://fcm.googleapis.com:80/x", "port 80 is not allowed"),
        ("https://user:pw@fcm.googleapis.com/x", "user name or password"),
        ("https://fcm.googleapis.com:99999/x", "not a valid URL"),
        ("https://fcm.googleapis.com/a b", "spaces or control characters"),
        ("https:///nohost", "must name a host"),
        ("", "must be an https URL"),
    ],
)
def test_unsafe_endpoints_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(UnsafeEndpoint, match=problem.replace("?", r"\?").replace(".", r"\.")):
        check_endpoint(url, STRICT)


def test_the_stack_can_allow_other_ports() -> None:
    policy = EndpointPolicy(allowed_ports=frozenset({443, 8443}))
    assert check_endpoint("https://push.example:8443/x", policy) == "https://push.example:8443/x"
    with pytest.raises(UnsafeEndpoint, match="port 9443 is not allowed"):
        check_endpoint("https://push.example:9443/x", policy)


def test_loopback_only_with_the_explicit_local_setting() -> None:
    local = "http://127.0.0.1:4567/push/abc"
    with pytest.raises(UnsafeEndpoint, match="must be an https URL"):
        check_endpoint(local, STRICT)
    assert check_endpoint(local, LOCAL) == local
    assert check_endpoint("http://[::1]:4567/push/abc", LOCAL) == "http://[::1]:4567/push/abc"
    assert check_endpoint("http://localhost:4567/p", LOCAL) == "http://localhost:4567/p"
    # The local setting opens loopback, nothing else.
    for url in ("http://10.0.0.5/x", "https://169.254.169.254/x", "http://push.example/x"):
        with pytest.raises(UnsafeEndpoint):
            check_endpoint(url, LOCAL)


def resolver(*addresses: str):  # type: ignore[no-untyped-def]
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(addresses)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("10.0.0.5", "resolves to 10.0.0.5, a private address"),
        ("192.168.1.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "not a public address"),
        ("0.0.0.0", "resolves to 0.0.0.0"),
        ("224.0.0.251", "a multicast address"),
        ("::1", "a loopback address"),
        ("fd00::1", "a private address"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.5", "a private address"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:a00:1::1", "resolves to 2002:a00:1::1"),
    ],
)
def test_every_resolved_address_must_be_public(address: str, problem: str) -> None:
    resolve = resolver("142.250.74.106", address)
    with pytest.raises(UnsafeEndpoint, match=problem):
        check_endpoint(FCM, STRICT, resolve=resolve)
    assert resolve.asked == [("fcm.googleapis.com", 443)]


def test_public_addresses_pass() -> None:
    for address in ("142.250.74.106", "2a00:1450:4001:82b::200a", "::ffff:142.250.74.106"):
        check_address(address, STRICT)
    assert check_endpoint(FCM, STRICT, resolve=resolver("142.250.74.106", "2a00:1450::1")) == FCM


def test_a_name_that_does_not_resolve_is_unresolvable() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(EndpointUnresolvable, match="does not resolve"):
        check_endpoint(FCM, STRICT, resolve=fails)
    with pytest.raises(EndpointUnresolvable, match="does not resolve"):
        check_endpoint(FCM, STRICT, resolve=resolver())


def test_loopback_resolution_only_with_the_local_setting() -> None:
    with pytest.raises(UnsafeEndpoint, match="loopback"):
        check_endpoint("https://rebind.example.com/x", STRICT, resolve=resolver("127.0.0.1"))
    # Locally, a name may resolve to loopback, but still not to a private network.
    assert check_endpoint("https://rebind.example.com/x", LOCAL, resolve=resolver("127.0.0.1"))
    with pytest.raises(UnsafeEndpoint, match="private"):
        check_endpoint("https://rebind.example.com/x", LOCAL, resolve=resolver("10.1.2.3"))


def test_policy_from_the_environment() -> None:
    assert EndpointPolicy.from_env({}) == EndpointPolicy()
    assert EndpointPolicy.from_env({"ALLOW_LOOPBACK_PUSH": "true"}).allow_loopback
    assert not EndpointPolicy.from_env({"ALLOW_LOOPBACK_PUSH": "false"}).allow_loopback
    ports = EndpointPolicy.from_env({"PUSH_ALLOWED_PORTS": "443, 8443"}).allowed_ports
    assert ports == frozenset({443, 8443})
    with pytest.raises(ValueError, match="PUSH_ALLOWED_PORTS"):
        EndpointPolicy.from_env({"PUSH_ALLOWED_PORTS": "https"})
    with pytest.raises(ValueError, match="PUSH_ALLOWED_PORTS"):
        EndpointPolicy.from_env({"PUSH_ALLOWED_PORTS": "0"})
