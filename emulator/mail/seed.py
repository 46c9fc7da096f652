import random
from typing import Any


def seed_mail(tenant: Any, rng: random.Random, config: Any) -> None:
    """Staff mailboxes with two years of threads with customers (to be written)."""
