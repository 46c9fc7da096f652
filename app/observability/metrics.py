"""Prometheus metrics: every metric Steward exports is defined here, once, for all domains to update.

Labels are low-cardinality on purpose (route templates, status codes, small enums): never a customer, mailbox,
item id or URL, which would both explode the series count and leak personal data into the monitoring system.

Usage from any domain:
    from app.observability import metrics
    metrics.ITEMS_SYNCED.labels(kind="message").inc(count)
    with metrics.JOB_DURATION.labels(job="sync.mail").time(): ...
"""

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "ADMIN_WEBHOOKS",
    "CONTENT_TYPE_LATEST",
    "GRAPH_NOTIFICATIONS",
    "GRAPH_REQUESTS",
    "GRAPH_THROTTLE_WAIT",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "ITEMS_DELETED",
    "ITEMS_LABELED",
    "ITEMS_SYNCED",
    "JOB_DURATION",
    "JOB_RUNS",
    "PLANS",
    "TOKEN_VALIDATIONS",
    "render",
]

# Inbound HTTP (app.middleware) -----------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "steward_http_requests",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "steward_http_request_duration_seconds",
    "Time to serve an HTTP request, by method and route template.",
    ["method", "route"],
)
TOKEN_VALIDATIONS = Counter(
    "steward_api_token_validations",
    "Bearer tokens presented to the API, by outcome (accepted, rejected, unavailable).",
    ["outcome"],
)

# Microsoft Graph (connectors/graph, through the hooks the app gives it) ------------------------------------

GRAPH_REQUESTS = Counter(
    "steward_graph_requests",
    "Requests sent to Microsoft Graph, by HTTP method and response status code ('error' when none came back).",
    ["method", "status"],
)
GRAPH_THROTTLE_WAIT = Histogram(
    "steward_graph_throttle_wait_seconds",
    "Time spent waiting before a Graph request because of throttling (Retry-After or backoff), by reason.",
    ["reason"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)

# Work done in the tenant ----------------------------------------------------------------------------------

ITEMS_SYNCED = Counter(
    "steward_items_synced",
    "Items whose metadata was synced from Microsoft 365, by kind (message, driveItem).",
    ["kind"],
)
ITEMS_LABELED = Counter(
    "steward_items_labeled",
    "Sensitivity-label assignments, by item kind and outcome (applied, unchanged, failed).",
    ["kind", "outcome"],
)
ITEMS_DELETED = Counter(
    "steward_items_deleted",
    "Deletions under an approved plan, by item kind and outcome (deleted, already_gone, held, failed).",
    ["kind", "outcome"],
)
PLANS = Gauge(
    "steward_plans",
    "Deletion plans by state, as last counted.",
    ["state"],
)

# Jobs and inbound events ----------------------------------------------------------------------------------

JOB_DURATION = Histogram(
    "steward_job_duration_seconds",
    "Duration of scheduled and background jobs, by job id.",
    ["job"],
    buckets=(0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
JOB_RUNS = Counter(
    "steward_job_runs",
    "Job runs by job id and outcome (succeeded, failed, skipped).",
    ["job", "outcome"],
)
ADMIN_WEBHOOKS = Counter(
    "steward_admin_webhooks",
    "Admin webhook deliveries, by outcome (accepted, duplicate, unauthorized, invalid).",
    ["outcome"],
)
GRAPH_NOTIFICATIONS = Counter(
    "steward_graph_notifications",
    "Graph change and lifecycle notifications received, by kind and outcome (stored, or why one was dropped: "
    "client_state_mismatch, unknown_subscription, tenant_mismatch, malformed...).",
    ["kind", "outcome"],
)


def render() -> bytes:
    """The exposition text for /metrics."""
    return generate_latest(REGISTRY)
