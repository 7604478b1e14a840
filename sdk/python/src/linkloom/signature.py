"""Signed task calls: the ``X-Loom-Signature`` scheme (docs/signatures.md).

A node with a signing key sends every HTTP task request with
``X-Loom-Signature: t=<unix seconds>,kid=<key name>,v1=<hex HMAC-SHA256>`` over the time, the
method, the full URL, the ``Idempotency-Key`` header and the raw body. A :class:`Verifier` holds
the keys a backend accepts (several during a rotation) and tells apart the five ways a request
can fail the check. No I/O here; secrets never appear in reprs or messages.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import LinkLoomError

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "MalformedSignature",
    "MissingSignature",
    "SignatureError",
    "SignatureMismatch",
    "StaleSignature",
    "UnknownKey",
    "Verifier",
    "sign",
]

#: The header that carries the signature.
SIGNATURE_HEADER = "X-Loom-Signature"
#: How far from now a signature's time may be by default, either way, in seconds.
DEFAULT_TOLERANCE_S = 300
#: Longest header read; a real one is about 100 characters.
MAX_HEADER_CHARS = 4096

Secret = Union[str, bytes]
Keys = Union[Mapping[str, Union[Secret, Sequence[Secret]]], Iterable[Tuple[str, Secret]]]


class SignatureError(LinkLoomError):
    """A request whose signature does not verify: answer 401 and do no work.

    Attributes:
        reason: ``missing``, ``malformed``, ``stale``, ``unknown_key`` or ``mismatch``.
    """

    kind = "unauthorized"
    reason = "mismatch"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_signature")


class MissingSignature(SignatureError):
    """The request has no ``X-Loom-Signature`` header."""

    reason = "missing"


class MalformedSignature(SignatureError):
    """The header is not ``t=...,kid=...,v1=<64 hex digits>``."""

    reason = "malformed"


class StaleSignature(SignatureError):
    """The signature's time is further from now than the tolerance (a replay, or a wrong clock)."""

    reason = "stale"


class UnknownKey(SignatureError):
    """The header names a key (``kid``) this verifier does not hold."""

    reason = "unknown_key"


class SignatureMismatch(SignatureError):
    """The signature does not match: wrong secret, or the method, URL, key or body changed."""

    reason = "mismatch"


def _bytes(secret: Secret) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _mac(secret: bytes, timestamp: int, method: str, url: str, idempotency_key: str, body: bytes) -> str:
    message = f"{timestamp}\n{method.upper()}\n{url}\n{idempotency_key}\n".encode() + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(
    kid: str,
    secret: Secret,
    timestamp: int,
    method: str,
    url: str,
    idempotency_key: str,
    body: bytes,
) -> str:
    """The header value a node sends for this request (for tests of your backend)."""
    digest = _mac(_bytes(secret), timestamp, method, url, idempotency_key, body)
    return f"t={timestamp},kid={kid},v1={digest}"


class Verifier:
    """The keys a backend accepts and how far from now a signature's time may be.

    Args:
        keys: Key name → secret (``default`` for ``LOOM_SIGNING_SECRET``, else the names of
            ``LOOM_SIGNING_KEYS``); a name may map to several secrets during a switch. Pairs
            ``(kid, secret)`` are accepted too.
        tolerance: Seconds a signature's time may be away from now, either way (default 300).

    Example::

        verifier = Verifier({"default": os.environ["LOOM_SIGNING_SECRET"]})
        verifier.verify(request.headers.get("x-loom-signature"), "POST",
                        "https://backend.example/extract", request.headers.get("idempotency-key", ""),
                        body)
    """

    def __init__(self, keys: Keys, tolerance: int = DEFAULT_TOLERANCE_S) -> None:
        self._keys: Dict[str, List[bytes]] = {}
        pairs: Iterable[Tuple[str, Union[Secret, Sequence[Secret]]]]
        pairs = keys.items() if isinstance(keys, Mapping) else keys
        for kid, secrets in pairs:
            values = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
            self._keys.setdefault(kid, []).extend(_bytes(s) for s in values)
        if tolerance < 0:
            raise ValueError("tolerance must not be negative")
        self.tolerance = int(tolerance)

    def __repr__(self) -> str:
        return f"Verifier(keys={sorted(self._keys)!r}, tolerance={self.tolerance})"

    def verify(
        self,
        header: Optional[str],
        method: str,
        url: str,
        idempotency_key: Optional[str],
        body: bytes,
        now: Optional[float] = None,
    ) -> int:
        """Checks a request; answers the signature's time (Unix seconds).

        Args:
            header: The ``X-Loom-Signature`` header, ``None`` if the request had none.
            method: The request's method.
            url: The full URL the node called (your public URL, not one a proxy rewrote).
            idempotency_key: The ``Idempotency-Key`` header (``None`` or ``""`` if none).
            body: The raw body bytes, as received.
            now: Unix seconds to check against (default: the clock).

        Raises:
            MissingSignature, MalformedSignature, StaleSignature, UnknownKey, SignatureMismatch.
        """
        if header is None:
            raise MissingSignature(f"no {SIGNATURE_HEADER} header")
        if len(header) > MAX_HEADER_CHARS:
            raise MalformedSignature(f"the {SIGNATURE_HEADER} header is longer than {MAX_HEADER_CHARS}")
        timestamp: Optional[int] = None
        kid: Optional[str] = None
        candidates: List[str] = []
        for part in header.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep:
                raise MalformedSignature(f"`{part.strip()}` is not key=value")
            if name == "t":
                text = value.strip()
                if not text or not (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
                    raise MalformedSignature(f"t=`{value}` is not a number")
                timestamp = int(text)
            elif name == "kid":
                kid = value
            elif name == "v1":
                if len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
                    raise MalformedSignature("v1= must be 64 hex digits")
                candidates.append(value.lower())
        if timestamp is None:
            raise MalformedSignature("no t= timestamp")
        if not candidates:
            raise MalformedSignature("no v1= signature")
        current = time.time() if now is None else now
        age = current - timestamp
        if abs(age) > self.tolerance:
            raise StaleSignature(
                f"the signature is {int(age)} s away from now; at most {self.tolerance} s is accepted"
            )
        if kid is not None:
            secrets = self._keys.get(kid)
            if not secrets:
                raise UnknownKey(f"the signature names key `{kid}`, which this verifier does not have")
        else:  # a node older than key ids: try every key
            secrets = [s for values in self._keys.values() for s in values]
        key = idempotency_key or ""
        matched = False
        for secret in secrets:
            expected = _mac(secret, timestamp, method, url, key, body)
            for candidate in candidates:
                # No early exit: the time taken does not depend on which one matched.
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise SignatureMismatch(
                "the signature does not match the request "
                "(wrong secret, or the method, URL, key or body was changed)"
            )
        return timestamp
