"""What deletion work needs from the outside world, bundled so services and jobs receive it explicitly."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.config import Settings
from app.db.base import utc_now
from app.plans.datamap import DataMapReader
from app.plans.holds import ExternalHolds
from app.policy import Policy, default_policy, load_policy


def policy_for(settings: Settings) -> Policy:
    return load_policy(settings.policy_path) if settings.policy_path else default_policy()


@dataclass
class DeletionContext:
    settings: Settings
    policy: Policy
    # Planning needs both; deciding on and expiring plans needs neither.
    external_holds: ExternalHolds | None = None
    datamap: DataMapReader | None = None
    clock: Callable[[], datetime] = utc_now
