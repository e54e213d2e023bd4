"""Same-run baselines: what this machine can do right now, measured in the benchmark's process.

The machine is shared and noisy, so an absolute POSTs/s means little from one run to the next;
a ratio against a baseline taken moments before (and after) in the same process does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNING_STRING_BYTES = 1024


def signing_string(size: int = SIGNING_STRING_BYTES) -> bytes:
    """A draft-cavage-shaped signing string padded to `size` bytes.

    The length barely matters (SHA-256 of 1 KB is ~1 µs against ~1 ms of RSA), but a fixed,
    realistic input keeps the baseline comparable between runs.
    """
    head = (
        b"(request-target): post /inbox\n"
        b"host: 127.0.1.1:8000\n"
        b"date: Tue, 07 Jan 2025 12:00:00 GMT\n"
        b"digest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        b"x-padding: "
    )
    return head + b"a" * max(0, size - len(head))


@dataclass(frozen=True, slots=True)
class SignRate:
    per_second: float  # wall clock: what the target is stated in
    cpu_ms_per_sign: float  # process CPU time: blind to time stolen by neighbours on the host


def rsa_sign_rate(key: rsa.RSAPrivateKey, seconds: float) -> SignRate:
    """Raw RSA PKCS#1 v1.5 SHA-256 signing, single-threaded, for ~`seconds`."""
    data = signing_string()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    key.sign(data, pkcs1, sha256)  # the first call pays for lazy key set-up; keep it out
    count = 0
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        # Check the clock every 16 signatures: cheap, and still within ~15 ms of `seconds`.
        for _ in range(16):
            key.sign(data, pkcs1, sha256)
        count += 16
        now = time.perf_counter()
        if now >= deadline:
            cpu_ms = 1000 * (time.process_time() - cpu) / count
            return SignRate(per_second=count / (now - start), cpu_ms_per_sign=cpu_ms)
