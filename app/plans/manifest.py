"""The canonical manifest of a plan and its SHA-256: what approvers approve and what execution re-checks.

The canonical form is JSON with sorted keys, no whitespace, UTF-8, and items in a fixed order, so the same
plan always hashes the same on every backend and after any round trip through the store. It names the plan
and tenant, so a hash (and an approval bound to it) cannot be replayed onto another plan.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MANIFEST_FORMAT = 1


def name_hash(name: str) -> str:
    """The only trace of an item's name Steward keeps: enough to match, nothing to read."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ManifestLine:
    kind: str
    container_id: str
    item_id: str
    etag: str | None
    size: int
    name_hash: str
    action: str
    exclusion_reason: str | None
    shared_with: tuple[str, ...]

    def sort_key(self) -> tuple[str, str, str]:
        return (self.kind, self.container_id, self.item_id)

    def canonical(self) -> list[Any]:
        return [
            self.kind,
            self.container_id,
            self.item_id,
            self.etag,
            self.size,
            self.name_hash,
            self.action,
            self.exclusion_reason,
            sorted(self.shared_with),
        ]


@dataclass(frozen=True, slots=True)
class ManifestHeader:
    plan_id: str
    tenant_id: str
    customer_ids: tuple[str, ...]
    trigger: str
    reason: str
    include_shared: bool
    soft_delete_grace_days: int

    def canonical(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "plan_id": self.plan_id,
            "tenant_id": self.tenant_id,
            "customer_ids": sorted(self.customer_ids),
            "trigger": self.trigger,
            "reason": self.reason,
            "include_shared": self.include_shared,
            "soft_delete_grace_days": self.soft_delete_grace_days,
        }


def canonical_manifest(header: ManifestHeader, lines: Iterable[ManifestLine]) -> bytes:
    document = {**header.canonical(), "items": [line.canonical() for line in sorted(lines, key=ManifestLine.sort_key)]}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def manifest_hash(header: ManifestHeader, lines: Iterable[ManifestLine]) -> str:
    return hashlib.sha256(canonical_manifest(header, lines)).hexdigest()
