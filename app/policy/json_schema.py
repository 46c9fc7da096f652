"""The policy file's JSON schema (for editors and CI); the committed copy must equal what the model generates."""

import json
from pathlib import Path
from typing import Any

from app.policy.schemas import Policy

SCHEMA_PATH = Path(__file__).with_name("policy.schema.json")


def export_json_schema() -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **Policy.model_json_schema()}


def schema_text() -> str:
    return json.dumps(export_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
