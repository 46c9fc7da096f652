"""Sites, drives and driveItems. (Owned by the files routes; skeleton to be completed.)"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FileStore:
    drives: dict[str, object] = field(default_factory=dict)
    sites: dict[str, object] = field(default_factory=dict)
