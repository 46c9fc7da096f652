"""Least privilege: compare the permission manifest (infra/graph-permissions.yaml) with what the token holds.

At start the service asks for a token and reads its `roles` claim, the application permissions actually
granted with admin consent. Missing ones mean features will fail with 403; excess ones mean the app can do more
than Steward needs, which an auditor should see. The token is decoded without verifying its signature: it came
straight from Entra ID over TLS, and only the claim values are read, never trusted for authorisation here.
"""

from dataclasses import dataclass
from pathlib import Path

import jwt
import yaml
from azure.core.credentials_async import AsyncTokenCredential

from connectors.base import AuthError

DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "infra" / "graph-permissions.yaml"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class ManifestError(ValueError):
    """The permission manifest is missing or not in the expected shape."""


@dataclass(frozen=True, slots=True)
class PermissionReport:
    required: frozenset[str]
    granted: frozenset[str]

    @property
    def missing(self) -> frozenset[str]:
        return self.required - self.granted

    @property
    def excess(self) -> frozenset[str]:
        return self.granted - self.required

    @property
    def is_exact(self) -> bool:
        return not self.missing and not self.excess

    def summary(self) -> str:
        if self.is_exact:
            return f"Graph permissions match the manifest ({len(self.required)} application permissions)"
        parts = []
        if self.missing:
            parts.append("missing: " + ", ".join(sorted(self.missing)))
        if self.excess:
            parts.append("excess (not in the manifest): " + ", ".join(sorted(self.excess)))
        return "Graph permissions differ from the manifest; " + "; ".join(parts)


def load_manifest(path: Path = DEFAULT_MANIFEST) -> frozenset[str]:
    """The application permission names the manifest requests."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"cannot read the permission manifest {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"the permission manifest {path} is not valid YAML: {exc}") from None
    entries = document.get("application_permissions") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"{path} has no 'application_permissions' list")
    names = [entry.get("name") if isinstance(entry, dict) else None for entry in entries]
    if not all(isinstance(name, str) and name for name in names):
        raise ManifestError(f"every entry of 'application_permissions' in {path} needs a 'name'")
    return frozenset(str(name) for name in names)


def token_roles(access_token: str) -> frozenset[str]:
    """The `roles` claim of a Graph access token (application permissions granted to the app)."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise AuthError("the Graph access token is not a JWT; cannot read its roles") from None
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise AuthError("the Graph access token's roles claim is not a list of names")
    return frozenset(roles)


def compare(required: frozenset[str], granted: frozenset[str]) -> PermissionReport:
    return PermissionReport(required=required, granted=granted)


async def check_permissions(
    credential: AsyncTokenCredential, *, manifest: Path = DEFAULT_MANIFEST, scope: str = GRAPH_SCOPE
) -> PermissionReport:
    token = await credential.get_token(scope)
    return compare(load_manifest(manifest), token_roles(token.token))
