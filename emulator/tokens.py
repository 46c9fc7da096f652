"""Signing keys and JWTs for the emulated Entra ID tenant.

Access tokens are RS256 JWTs shaped like the v1.0 tokens Entra ID issues for Microsoft Graph to daemon apps
(client credentials): `aud` is Graph, `iss` is sts.windows.net/{tid}/, and `roles` carries the application
permissions granted to the calling app registration.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
GRAPH_RESOURCE = "https://graph.microsoft.com"
ACCESS_TOKEN_LIFETIME_S = 3599


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # Entra's kid is the certificate thumbprint; a digest of the public key is as stable and unique.
        return cls(kid=b64url(hashlib.sha1(public_der, usedforsecurity=False).digest()), private_key=key)

    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": b64url(n), "e": b64url(e)}


@dataclass
class KeySet:
    """The keys an issuer publishes in its JWKS; the newest signs. Rotation keeps older keys published."""

    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self, keep: int = 2) -> SigningKey:
        self.keys.append(SigningKey.generate())
        del self.keys[:-keep]
        return self.current

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.current.private_key, algorithm="RS256", headers={"kid": self.current.kid})

    def verify(self, token: str, *, audience: str | tuple[str, ...], issuer: str | None) -> dict[str, Any]:
        """Decode and verify a token signed by one of this set's keys. Raises jwt.InvalidTokenError."""
        header = jwt.get_unverified_header(token)
        key = next((k for k in self.keys if k.kid == header.get("kid")), None)
        if key is None:
            raise jwt.InvalidSignatureError("Signing key not found")
        options = {"require": ["exp", "iat", "aud"], "verify_iss": issuer is not None}
        return jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=list(audience) if isinstance(audience, tuple) else audience,
            issuer=issuer,
            options=options,  # type: ignore[arg-type]
            leeway=60,
        )


def graph_issuer(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


def app_access_token_claims(
    *,
    tenant_id: str,
    client_id: str,
    app_object_id: str,
    roles: list[str],
    audience: str = GRAPH_RESOURCE,
    lifetime_s: int = ACCESS_TOKEN_LIFETIME_S,
    now: float | None = None,
) -> dict[str, Any]:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": graph_issuer(tenant_id),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_s,
        "aio": b64url(uuid.uuid4().bytes),
        "app_displayname": None,
        "appid": client_id,
        "appidacr": "1",
        "idp": graph_issuer(tenant_id),
        "idtyp": "app",
        "oid": app_object_id,
        "rh": "0.emulated.",
        "sub": app_object_id,
        "tid": tenant_id,
        "uti": b64url(uuid.uuid4().bytes),
        "ver": "1.0",
    }
    if roles:
        claims["roles"] = sorted(roles)
    del claims["app_displayname"]
    return claims
