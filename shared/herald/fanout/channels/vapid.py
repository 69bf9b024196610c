"""VAPID (RFC 8292): the application server's P-256 key and the ES256 JWTs that identify it to push services.

The JWT is signed with ``cryptography`` directly: three claims and one signature do not need a JWT
library, and the clock stays injectable. Tokens are cached per push service origin
(``scheme://host[:port]``, the ``aud`` claim) for their life of 12 hours and renewed when less than
one hour remains, so a fan-out signs once per push service, not once per subscriber.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

#: RFC 8292 section 2: push services refuse an ``exp`` more than 24 hours ahead.
MAX_TOKEN_LIFETIME_S = 24 * 3600
TOKEN_LIFETIME_S = 12 * 3600
REFRESH_BEFORE_S = 3600
#: Origins whose token is kept: endpoints are a stranger's URLs, so their hosts are not a bounded
#: set; beyond this the oldest origin's token goes (it is signed again if that origin comes back).
TOKENS_MAX = 1024

_DEFAULT_PORTS = {"http": 80, "https": 443}


class VapidError(ValueError):
    """A VAPID key, subject or token that is not usable."""


def b64url_encode(data: bytes) -> str:
    """base64url without padding (the encoding of every VAPID and Web Push value)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_TO_STANDARD = str.maketrans("-_", "+/")


def b64url_decode(value: str) -> bytes:
    """base64url, padding optional; standard base64's ``+/`` are accepted too."""
    # What base64.urlsafe_b64decode does (``-_`` to ``+/``, then a non-strict a2b_base64), in one step.
    try:
        text = value.strip().translate(_TO_STANDARD).rstrip("=")
        return binascii.a2b_base64(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise VapidError("not base64url") from exc


def origin_of(url: str) -> str:
    """A URL's origin as a JWT ``aud``: lower-case scheme and host, the port only when not the default."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        raise VapidError(f"not an http(s) URL: {url[:80]!r}")
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    port = parts.port
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def public_key_b64(key: ec.EllipticCurvePublicKey) -> str:
    """The uncompressed point, base64url: the header's ``k=`` and the browsers' ``applicationServerKey``."""
    return b64url_encode(
        key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def load_vapid_key(value: str) -> ec.EllipticCurvePrivateKey:
    """The VAPID private key from its stored text: PEM (PKCS#8 or SEC1 "EC PRIVATE KEY"), the raw
    32-byte private scalar in base64url (what ``web-push generate-vapid-keys`` prints), or DER in
    base64(url) (what ``vapid --gen`` writes without armour).
    """
    text = value.strip()
    if not text:
        raise VapidError("the VAPID key is empty")
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError) as exc:
            raise VapidError("the VAPID key PEM does not load") from exc
    else:
        raw = b64url_decode(text)
        if len(raw) == 32:
            try:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            except ValueError as exc:
                raise VapidError("the raw VAPID key is not a P-256 private scalar") from exc
        else:
            try:
                key = serialization.load_der_private_key(raw, password=None)
            except (ValueError, TypeError) as exc:
                raise VapidError("the VAPID key is neither PEM, a raw 32-byte key nor DER") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VapidError("a VAPID key is an EC key on P-256")
    return key


def generate_vapid_key() -> ec.EllipticCurvePrivateKey:
    """A new VAPID key pair."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    """PKCS#8 PEM, the form to store in SSM Parameter Store (SecureString) or Secrets Manager."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def check_subject(subject: str) -> str:
    """A ``sub`` claim push services accept: a ``mailto:`` address or an ``https:`` URL."""
    if subject.startswith("mailto:") and "@" in subject[7:]:
        return subject
    if subject.startswith("https://") and len(subject) > 8:
        return subject
    raise VapidError("the VAPID subject must be a mailto: address or an https: URL")


def _json_b64(value: dict[str, object]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":"), sort_keys=True).encode("ascii"))


def sign_jwt(key: ec.EllipticCurvePrivateKey, claims: dict[str, object]) -> str:
    """An ES256 JWT of ``claims`` (JWS compact form; the signature is r || s, 64 bytes)."""
    signing_input = f"{_json_b64({'typ': 'JWT', 'alg': 'ES256'})}.{_json_b64(claims)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def verify_jwt(token: str, public_key: ec.EllipticCurvePublicKey) -> dict[str, object]:
    """The claims of an ES256 JWT whose signature ``public_key`` verifies; raises :class:`VapidError`."""
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VapidError("the token is not a JWT") from exc
    if not isinstance(header, dict) or header.get("alg") != "ES256" or not isinstance(claims, dict):
        raise VapidError("the token is not an ES256 JWT")
    if len(signature) != 64:
        raise VapidError("an ES256 signature is 64 bytes")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, f"{header_b64}.{claims_b64}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise VapidError("the token's signature does not verify") from exc
    return claims


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its base64url uncompressed point."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(value))
    except ValueError as exc:
        raise VapidError("not a P-256 public key") from exc


@dataclass(frozen=True, slots=True)
class _Token:
    header: str
    expires: float


class VapidSigner:
    """``Authorization`` headers for push services, signed with the application server's key.

    Thread-safe; one per container. ``clock`` returns seconds since the epoch. Tokens are kept for
    at most ``TOKENS_MAX`` origins, the oldest dropped first.
    """

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey | str,
        subject: str,
        *,
        clock: Callable[[], float] = time.time,
        lifetime_s: int = TOKEN_LIFETIME_S,
        refresh_before_s: int = REFRESH_BEFORE_S,
    ) -> None:
        if not 0 < refresh_before_s < lifetime_s <= MAX_TOKEN_LIFETIME_S:
            raise VapidError("need 0 < refresh_before_s < lifetime_s <= 24 h")
        self.key = load_vapid_key(key) if isinstance(key, str) else key
        self.subject = check_subject(subject)
        self.clock = clock
        self.lifetime_s = lifetime_s
        self.refresh_before_s = refresh_before_s
        #: The application server key: the browsers' ``applicationServerKey`` and the header's ``k=``.
        self.public_key = public_key_b64(self.key.public_key())
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self.signatures = 0  # how many JWTs were signed: the cache's effect, for tests and metrics

    def claims_for(self, origin: str, now: float) -> dict[str, object]:
        """Fresh claims for one origin (a new dict each time: nothing is shared between origins)."""
        return {"aud": origin, "exp": int(now) + self.lifetime_s, "sub": self.subject}

    def header_for(self, endpoint: str) -> str:
        """``vapid t=<jwt>, k=<public key>`` for the push service that serves ``endpoint``."""
        return self.header_for_origin(origin_of(endpoint))

    def header_for_origin(self, origin: str) -> str:
        """:meth:`header_for` of an origin already worked out (:func:`origin_of`)."""
        now = self.clock()
        token = self._tokens.get(origin)
        if token is not None and token.expires - now > self.refresh_before_s:
            return token.header
        with self._lock:
            token = self._tokens.get(origin)
            if token is None or token.expires - now <= self.refresh_before_s:
                claims = self.claims_for(origin, now)
                jwt = sign_jwt(self.key, claims)
                self.signatures += 1
                token = _Token(f"vapid t={jwt}, k={self.public_key}", float(int(now) + self.lifetime_s))
                if origin not in self._tokens and len(self._tokens) >= TOKENS_MAX:
                    del self._tokens[next(iter(self._tokens))]
                self._tokens[origin] = token
        return token.header
