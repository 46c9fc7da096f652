"""Mailboxes, folders and messages. (Owned by the mail routes; skeleton to be completed.)"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MailStore:
    mailboxes: dict[str, object] = field(default_factory=dict)
