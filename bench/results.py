"""The results file (the benchmarks issue's format) and its chart."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {"cpu": _cpu_model(), "cores": os.cpu_count() or 1, "python": sys.version.split()[0]}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write(path: Path, *, profile: dict[str, Any] | None, scenarios: dict[str, Any]) -> dict[str, Any]:
    """Merge this run's scenarios into the file: scenarios not measured again keep their last figures."""
    previous: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    document = {
        "machine": machine(),
        "profile": profile if profile is not None else previous.get("profile", {}),
        "scenarios": {**previous.get("scenarios", {}), **scenarios},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return document


def chart(document: dict[str, Any], path: Path) -> None:
    """One PNG with a panel per scenario that has figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = document["scenarios"]
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    figure.suptitle(f"Steward benchmarks: {document['machine']['cpu']}, {document['machine']['cores']} cores")

    sync = scenarios.get("sync_label")
    ax = axes[0][0]
    if sync:
        names = ["ceiling", "Steward", "naive"]
        values = [sync["ceiling_s"], sync["steward_s"], sync["naive_s"]]
        ax.bar(names, values, color=["#999999", "#2b7bba", "#d95f02"])
        ax.set_yscale("log")
        ax.set_ylabel("seconds (log)")
        naive_note = " (naive extrapolated)" if sync.get("naive_extrapolated") else ""
        ax.set_title(f"full sync of {sync['items']:,} items: x{sync['ratio']}{naive_note}")
        for index, value in enumerate(values):
            ax.annotate(f"{value:,.1f}s", (index, value), ha="center", va="bottom")
    else:
        ax.set_axis_off()

    ax = axes[0][1]
    scale = scenarios.get("scale")
    if scale:
        sizes = sorted(scale, key=int)
        ax.plot([int(s) for s in sizes], [scale[s]["items_per_s"] for s in sizes], "o-", label="items/s")
        ax.set_xscale("log")
        ax.set_xlabel("items")
        ax.set_ylabel("items/s")
        rss = ax.twinx()
        rss.plot([int(s) for s in sizes], [scale[s]["peak_rss_mb"] for s in sizes], "s--", color="#d95f02")
        rss.set_ylabel("peak RSS (MB)")
        rss.axhline(300, color="#d95f02", linewidth=0.5)
        ax.set_ylim(bottom=0)
        rss.set_ylim(0, max(350.0, *(scale[s]["peak_rss_mb"] * 1.1 for s in sizes)))
        ax.set_title("scale: throughput and peak RSS (300 MB line)")
    else:
        ax.set_axis_off()

    ax = axes[1][0]
    classifier = scenarios.get("classifier")
    if classifier:
        values = [classifier["items_per_s_per_core"], classifier.get("with_text_items_per_s_per_core", 0.0)]
        ax.bar(["metadata", "with text"], values, color=["#2b7bba", "#7570b3"])
        ax.set_yscale("log")
        ax.set_title("classifier: items/s per core (log)")
        for index, value in enumerate(values):
            ax.annotate(f"{value:,.0f}", (index, value), ha="center", va="bottom")
    else:
        ax.set_axis_off()

    ax = axes[1][1]
    notify = scenarios.get("notify")
    if notify:
        values = [notify["p50_ms"], notify["p99_ms"]]
        ax.bar(["p50", "p99"], values, color=["#2b7bba", "#2b7bba"])
        ax.axhline(1000, color="#d95f02", linewidth=1)
        ax.set_title(f"notification ack at {notify['offered_per_min']:,}/min (ms; target p99 < 1000)")
        for index, value in enumerate(values):
            ax.annotate(f"{value:,.0f} ms", (index, value), ha="center", va="bottom")
    else:
        ax.set_axis_off()

    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
