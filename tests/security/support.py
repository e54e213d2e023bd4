"""Test keys and an independent draft-cavage signer, to play the part of other servers.

`foreign_cavage_headers` deliberately does not use fedcop's signing code: it builds the signing
string by hand from the spec, so a symmetric bug in fedcop's sign and verify paths cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2025, 1, 5, 10, 0, 0, tzinfo=UTC)
NOW_HTTP = "Sun, 05 Jan 2025 10:00:00 GMT"
NOW_TS = 1736071200
BODY = b'{"type":"Follow"}'


@cache
def private_pem(name: str) -> str:
    return (DATA / f"{name}.pem").read_text()


@cache
def private_key(name: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(private_pem(name).encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
    return key


@cache
def public_pem(name: str) -> str:
    return (
        private_key(name)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sha256_b64(body: bytes) -> str:
    return b64(hashlib.sha256(body).digest())


def raw_sign(key_name: str, data: bytes) -> str:
    key = private_key(key_name)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return b64(key.sign(data))
    return b64(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def foreign_cavage_headers(
    *,
    method: str,
    target: str,
    headers: Mapping[str, str],
    names: Sequence[str],
    key_name: str = "rsa-2048",
    key_id: str = "https://remote.example/users/bob#main-key",
    algorithm: str | None = "rsa-sha256",
    extra_params: Mapping[str, str] = {},
) -> dict[str, str]:
    """`headers` plus a Signature over `names`, as another server would compute it."""
    lowered = {k.lower(): v for k, v in headers.items()}
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in ("(created)", "(expires)"):
            lines.append(f"{name}: {extra_params.get(name[1:-1], '').strip(chr(34))}")
        else:
            lines.append(f"{name}: {lowered[name]}")
    signature = raw_sign(key_name, "\n".join(lines).encode())
    parts = [f'keyId="{key_id}"']
    if algorithm is not None:
        parts.append(f'algorithm="{algorithm}"')
    parts += [f"{k}={v}" for k, v in extra_params.items()]
    parts += [f'headers="{" ".join(names)}"', f'signature="{signature}"']
    return {**headers, "Signature": ",".join(parts)}
