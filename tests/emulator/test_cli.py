"""`python -m emulator serve` as a subprocess: the ready line(s), HTTPS with the printed CA, a clean signal exit."""

from __future__ import annotations

import json
import os
import selectors
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60
REQUIRED_KEYS = {"authority", "graph_url", "ca_bundle", "tenant_id", "client_id", "client_secret", "control_url"}


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _read_lines_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Stdout up to the first line containing `marker`, read from the pipe itself so no deadline is missed."""
    assert process.stdout is not None
    descriptor = process.stdout.fileno()
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while marker.encode() not in received or not received.endswith(b"\n"):
            if not selector.select(timeout=READY_TIMEOUT_S):
                raise AssertionError(f"no '{marker}' on stdout within {READY_TIMEOUT_S} s; got {received!r}")
            chunk = os.read(descriptor, 65_536)
            if not chunk:
                stderr = process.stderr.read() if process.stderr else ""
                raise AssertionError(f"the emulator exited early: {received!r} {stderr}")
            received += chunk
    return received.decode().splitlines(keepends=True)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:  # only if a test failed before stopping its own process
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_serve_json_prints_one_line_serves_https_and_exits_cleanly(processes: list[subprocess.Popen[str]]):
    process = _start("--json", "--seed", "3", "--customers", "4")
    processes.append(process)
    [line] = _read_lines_until(process, "}")
    ready = json.loads(line)
    assert set(ready) >= REQUIRED_KEYS
    assert ready["authority"] == ready["graph_url"].removesuffix("/v1.0") + "/" + ready["tenant_id"]
    assert Path(ready["client_certificate"]).read_text().count("-----BEGIN") == 2
    assert len(json.loads(Path(ready["registry_path"]).read_text(encoding="utf-8"))) == 4

    tls = ssl.create_default_context(cafile=ready["ca_bundle"])
    with httpx.Client(verify=tls) as client:
        discovery = client.get(f"{ready['authority']}/v2.0/.well-known/openid-configuration")
        health = client.get(f"{ready['control_url']}/health")
    assert discovery.status_code == 200
    assert discovery.json()["token_endpoint"] == f"{ready['authority']}/oauth2/v2.0/token"
    assert health.json()["tenantId"] == ready["tenant_id"]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert process.stdout is not None
    assert process.stdout.read() == ""  # exactly one line, ever
    assert not Path(ready["ca_bundle"]).parent.exists()  # the temporary state dir is gone


def test_serve_readable_output_keeps_the_state_dir(processes: list[subprocess.Popen[str]], tmp_path: Path):
    state_dir = tmp_path / "state"
    process = _start("--seed", "3", "--customers", "2", "--staff", "2", "--state-dir", str(state_dir))
    processes.append(process)
    lines = _read_lines_until(process, "Ctrl+C")
    text = "".join(lines)
    for label in (
        "authority:",
        "Graph URL:",
        "CA bundle:",
        "tenant id:",
        "client id:",
        "client secret:",
        "control URL:",
    ):
        assert label in text
    assert str(state_dir / "ca.pem") in text

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    assert {"ca.pem", "app-cert.pem", "customers.json", "customers.csv"} <= {p.name for p in state_dir.iterdir()}


@pytest.mark.parametrize("args", [["--profile", "nope"], ["--port", "70000"], ["--staff", "1"], []])
def test_bad_arguments_exit_2(args: list[str]):
    command = [sys.executable, "-m", "emulator", *(["serve", *args] if args else [])]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "error" in result.stderr
