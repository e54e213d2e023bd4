"""Pieces shared by both HTTP signature dialects: keys, algorithms, digests, dates, clock window.

Pure functions only (no network, no database). The public surface is re-exported by
`fedcop.security.httpsig`; import from there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from fedcop.errors import FedcopError

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

# The concrete signature schemes we can compute; each declared algorithm name maps onto one.
Scheme = Literal["rsa-v1_5-sha256", "rsa-pss-sha512", "ed25519"]

# INTEROP §4 clock window, the same numbers Mastodon uses (app/lib/signed_request.rb).
CLOCK_SKEW = timedelta(hours=1)
DEFAULT_VALIDITY = timedelta(minutes=5)
MAX_VALIDITY = timedelta(hours=12)

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_PSS_SHA512 = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)  # RFC 9421 §3.3.1


class SignatureError(FedcopError):
    """A signature is missing, malformed, stale or wrong; `reason` is fit for a 401 body."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ParsedSignature(NamedTuple):
    """Everything needed to verify a request once the key for `key_id` has been found.

    A NamedTuple rather than a frozen dataclass: one is built for every inbound request, and
    a frozen dataclass's __init__ (object.__setattr__ per field) costs ~1.3 µs more.

    `signing_strings` holds the candidate signature bases in the order to try them (draft-cavage
    with a query string has two: with and without it). The digest of the body has already been
    checked against the signed Digest / Content-Digest header when this object exists.
    """

    dialect: Literal["cavage", "rfc9421"]
    key_id: str
    algorithm: str  # as declared, lower-cased; "hs2019" for cavage without one, "" for RFC 9421
    signature: bytes
    signing_strings: tuple[bytes, ...]
    created: datetime
    expires: datetime | None
    covered: tuple[str, ...]


@lru_cache(maxsize=4096)
def load_public_key(pem: str) -> PublicKey:
    """Parse a PEM public key once; verification runs ~10k/s with a handful of distinct keys."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise SignatureError("the public key is not a valid PEM key") from exc
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise SignatureError(f"unsupported public key type {type(key).__name__}")
    return key


@lru_cache(maxsize=256)
def load_private_key(pem: str) -> PrivateKey:
    """Parse a PEM (PKCS#8 or PKCS#1) private key once per distinct PEM."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key


def sign_bytes(key: PrivateKey, data: bytes, scheme: Scheme) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        if scheme != "ed25519":
            raise ValueError(f"an Ed25519 key cannot sign with {scheme}")
        return key.sign(data)
    if scheme == "rsa-v1_5-sha256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if scheme == "rsa-pss-sha512":
        return key.sign(data, _PSS_SHA512, hashes.SHA512())
    raise ValueError(f"an RSA key cannot sign with {scheme}")


# Stateless parameter objects, made once rather than for every signature checked.
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def verify_bytes(key: PublicKey, signature: bytes, data: bytes, scheme: Scheme) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif scheme == "rsa-pss-sha512":
            key.verify(signature, data, _PSS_SHA512, hashes.SHA512())
        else:
            key.verify(signature, data, _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True


def scheme_for(algorithm: str, key: PublicKey | PrivateKey) -> Scheme:
    """Map a declared algorithm name plus the key type onto the scheme to compute.

    hs2019 (and RFC 9421 without `alg`) means "derive it from the key": for RSA that is
    PKCS#1 v1.5 with SHA-256, which is what Mastodon, GoToSocial and Lemmy actually sign with.
    """
    is_ed = isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey)
    if algorithm in ("hs2019", ""):
        return "ed25519" if is_ed else "rsa-v1_5-sha256"
    wanted: Scheme
    if algorithm in ("rsa-sha256", "rsa-v1_5-sha256"):
        wanted = "rsa-v1_5-sha256"
    elif algorithm == "rsa-pss-sha512":
        wanted = "rsa-pss-sha512"
    elif algorithm == "ed25519":
        wanted = "ed25519"
    else:
        raise SignatureError(f"unsupported signature algorithm {algorithm!r}")
    if (wanted == "ed25519") != is_ed:
        kind = "an Ed25519" if is_ed else "an RSA"
        raise SignatureError(f"algorithm {algorithm!r} does not match {kind} key")
    return wanted


class LowerCaseHeaders(dict[str, str]):
    """Headers whose names are lower-case already (ASGI gives them so): not copied again."""


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive; callers pass one (comma-joined) value per name."""
    if isinstance(headers, LowerCaseHeaders):
        return headers
    return {name.lower(): value for name, value in headers.items()}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"{what} is not valid base64") from exc


def digests_equal(expected: bytes, received: bytes) -> bool:
    return hmac.compare_digest(expected, received)


def body_digest(body: bytes | None, algorithm: str) -> bytes | None:
    """Digest of the body for a `sha-256`/`sha-512` label (any case); None if unsupported."""
    name = algorithm.lower()
    if name == "sha-256":
        return hashlib.sha256(body or b"").digest()
    if name == "sha-512":
        return hashlib.sha512(body or b"").digest()
    return None


def http_date(when: datetime) -> str:
    """IMF-fixdate, e.g. `Thu, 26 Nov 2026 05:13:03 GMT` (RFC 9110 §5.6.7)."""
    return format_datetime(as_utc(when).replace(microsecond=0), usegmt=True)


@lru_cache(maxsize=1024)  # a burst from one server shares a handful of Date values
def parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise SignatureError(f"Date header {value!r} is not a valid HTTP date") from exc
    return as_utc(parsed)


def as_utc(when: datetime) -> datetime:
    """Naive datetimes are taken to be UTC, so comparisons never raise TypeError."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def from_timestamp(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise SignatureError(f"timestamp {value!r} is out of range") from exc


def check_clock_window(created: datetime, expires: datetime | None, now: datetime) -> None:
    """INTEROP §4 window: created at most 1 h ahead; valid until min(expires or created+5 min,
    created+12 h) plus 1 h of skew. Mirrors Mastodon so we accept exactly what it accepts."""
    now = as_utc(now)
    if created > now + CLOCK_SKEW:
        raise SignatureError("signature date is more than 1 hour in the future")
    deadline = min(expires or created + DEFAULT_VALIDITY, created + MAX_VALIDITY)
    if now > deadline + CLOCK_SKEW:
        if expires is not None and expires <= created + MAX_VALIDITY:
            raise SignatureError("signature has expired")
        raise SignatureError("signature date is too old")


def authority_of(url: str) -> tuple[str, str, str]:
    """(scheme, authority, path-with-query) of an absolute URL, normalised the way HTTP
    clients write the Host header: lower-case, default port dropped, fragment removed."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    authority = (
        host if port is None or str(port) == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, authority, path
