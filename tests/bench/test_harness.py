"""`python -m bench --smoke` end to end: a few dozen items, every quick scenario, the results file and its chart.

Figures are not judged here (speed belongs to the benchmark); the file's shape is, and so are the counts that must
hold on any machine: every item synced, one request per delta cursor on an unchanged tenant, no 429 surfacing.
"""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from bench.results import write

ROOT = Path(__file__).resolve().parents[2]
NUMBER: dict[str, object] = {"type": "number"}
COUNT: dict[str, object] = {"type": "integer", "minimum": 0}
BOOLEAN: dict[str, object] = {"type": "boolean"}


def _scenario(required: dict[str, dict[str, object]]) -> dict[str, object]:
    return {"type": "object", "required": sorted(required), "properties": required}


SCHEMA = {
    "type": "object",
    "required": ["machine", "profile", "scenarios"],
    "additionalProperties": False,
    "properties": {
        "machine": {
            "type": "object",
            "required": ["cpu", "cores", "python"],
            "additionalProperties": False,
            "properties": {
                "cpu": {"type": "string"},
                "cores": {"type": "integer", "minimum": 1},
                "python": {"type": "string"},
            },
        },
        "profile": {"type": "object", "required": ["name", "latency_ms", "outlook_limits", "ru_per_minute"]},
        "scenarios": {
            "type": "object",
            "required": ["sync_label", "incremental", "classifier", "notify"],
            "properties": {
                "sync_label": _scenario(
                    {
                        "items": COUNT,
                        "steward_s": NUMBER,
                        "naive_s": NUMBER,
                        "ratio": NUMBER,
                        "ceiling_s": NUMBER,
                        "ceiling_fraction": NUMBER,
                        "requests_per_1000_items": NUMBER,
                        "peak_rss_mb": NUMBER,
                        "unhandled_429": COUNT,
                        "naive_extrapolated": BOOLEAN,
                        "labels_applied": BOOLEAN,
                    }
                ),
                "incremental": _scenario({"cursors": COUNT, "requests": COUNT}),
                "classifier": _scenario({"items_per_s_per_core": NUMBER}),
                "notify": _scenario({"p99_ms": NUMBER, "rps": NUMBER}),
            },
        },
    },
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    output = tmp_path_factory.mktemp("bench") / "latest.json"
    scenarios = [arg for name in ("sync_label", "incremental", "classifier", "notify") for arg in ("--scenario", name)]
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(output), *scenarios],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    return json.loads(output.read_text()), output


def test_the_results_file_has_the_issues_shape(smoke: tuple[dict, Path]) -> None:
    document, _ = smoke
    jsonschema.validate(document, SCHEMA)
    assert document["profile"]["name"] == "fast"


def test_the_sync_saw_every_item_and_no_429_surfaced(smoke: tuple[dict, Path]) -> None:
    sync = smoke[0]["scenarios"]["sync_label"]
    assert sync["complete"] is True
    assert sync["items"] == sync["messages"] + sync["files"] > 0
    assert sync["naive_items"] == sync["items"]  # the smoke tenant is small enough to read whole
    assert sync["naive_extrapolated"] is False
    assert sync["unhandled_429"] == sync["naive_unhandled_429"] == 0


def test_an_unchanged_tenant_costs_one_request_per_delta_cursor(smoke: tuple[dict, Path]) -> None:
    incremental = smoke[0]["scenarios"]["incremental"]
    assert incremental["cursors"] > 0
    assert incremental["requests"] == incremental["cursors"]
    assert incremental["changes"] == 0


def test_every_notification_was_acknowledged_and_stored(smoke: tuple[dict, Path]) -> None:
    notify = smoke[0]["scenarios"]["notify"]
    assert notify["sent"] > 0
    assert notify["acked"] == notify["sent"]
    assert notify["stored"] >= notify["acked"]


def test_the_chart_is_a_png(smoke: tuple[dict, Path]) -> None:
    _, output = smoke
    assert output.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scenarios_not_measured_again_keep_their_figures(tmp_path: Path) -> None:
    results = tmp_path / "latest.json"
    write(results, profile={"name": "realistic"}, scenarios={"notify": {"p99_ms": 1.0, "rps": 2.0}})
    document = write(results, profile=None, scenarios={"classifier": {"items_per_s_per_core": 3.0}})
    assert document["scenarios"] == {
        "notify": {"p99_ms": 1.0, "rps": 2.0},
        "classifier": {"items_per_s_per_core": 3.0},
    }
    assert document["profile"] == {"name": "realistic"}
