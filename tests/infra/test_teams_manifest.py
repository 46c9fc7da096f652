"""infra/teams: a Teams app manifest (v1.16 or later) for the approval bot, with icons Teams accepts."""

import json
import re
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import INFRA

TEAMS = INFRA / "teams"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((TEAMS / "manifest.json").read_text())
    return loaded


def test_schema_and_version(manifest: dict[str, Any]) -> None:
    major, minor = (int(part) for part in manifest["manifestVersion"].split("."))
    assert (major, minor) >= (1, 16)
    assert manifest["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])


def test_required_fields_and_their_limits(manifest: dict[str, Any]) -> None:
    uuid.UUID(manifest["id"])
    developer = manifest["developer"]
    for field in ("name", "websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert developer[field]
    for field in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert developer[field].startswith("https://")
    assert 0 < len(manifest["name"]["short"]) <= 30
    assert len(manifest["name"]["full"]) <= 100
    assert 0 < len(manifest["description"]["short"]) <= 80
    assert 0 < len(manifest["description"]["full"]) <= 4000
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", manifest["accentColor"])


def test_the_bot(manifest: dict[str, Any]) -> None:
    [bot] = manifest["bots"]
    uuid.UUID(bot["botId"])
    assert set(bot["scopes"]) <= {"team", "personal", "groupChat"}
    assert "team" in bot["scopes"]  # approvals happen in the approvers' channel
    assert bot["isNotificationOnly"] is False  # Action.Execute must reach the bot
    assert manifest["validDomains"]


def png_header(path: Path) -> tuple[int, int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    assert zlib.crc32(data[12 : 16 + length]) & 0xFFFFFFFF == struct.unpack(">I", data[16 + length : 20 + length])[0]
    width, height, _depth, color_type = struct.unpack(">IIBB", data[16:26])
    return width, height, color_type


def test_the_icons_exist_with_the_sizes_teams_requires(manifest: dict[str, Any]) -> None:
    color_width, color_height, _ = png_header(TEAMS / manifest["icons"]["color"])
    assert (color_width, color_height) == (192, 192)
    outline_width, outline_height, outline_type = png_header(TEAMS / manifest["icons"]["outline"])
    assert (outline_width, outline_height) == (32, 32)
    assert outline_type == 6  # RGBA: the outline icon is white on transparent
