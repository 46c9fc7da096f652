import random
from typing import Any


def seed_files(tenant: Any, rng: random.Random, config: Any) -> None:
    """OneDrive and SharePoint files (to be written)."""
