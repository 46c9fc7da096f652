"""What disclosure work needs from outside, passed explicitly to services and jobs."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.config import Settings
from app.db.base import utc_now
from app.policy import Policy

# The two-person rule is a floor for releasing data to an authority, even if the policy's quorum is lower.
MIN_EXPORT_APPROVALS = 2


@dataclass
class DisclosureContext:
    settings: Settings
    policy: Policy
    clock: Callable[[], datetime] = utc_now

    @property
    def required_approvals(self) -> int:
        return max(MIN_EXPORT_APPROVALS, self.policy.approvals.quorum)
