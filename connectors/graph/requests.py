"""Small helpers shared by the operations modules to shape SDK-built requests."""

import json
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation

from connectors.graph.budget import Claim, Scope
from connectors.graph.transport import claim

# Outlook item ids change when an item moves folders unless every request asks for immutable ids
# (graph-facts.md 3); delta links and subscriptions honour it too.
IMMUTABLE_IDS = 'IdType="ImmutableId"'


def configured(query: Any = None, headers: dict[str, str] | None = None) -> RequestConfiguration[Any]:
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
    for name, value in (headers or {}).items():
        config.headers.add(name, value)
    return config


def prefer(request: RequestInformation, *preferences: str) -> RequestInformation:
    for preference in preferences:
        request.headers.add("Prefer", preference)
    return request


def mail_request(request: RequestInformation, page_size: int | None = None) -> RequestInformation:
    """Every Outlook request carries Prefer: IdType="ImmutableId" (and a page size when listing)."""
    prefer(request, IMMUTABLE_IDS)
    if page_size is not None:
        prefer(request, f"odata.maxpagesize={page_size}")
    return request


def json_content(request: RequestInformation, body: dict[str, Any]) -> RequestInformation:
    """Set a JSON body directly: for small bodies whose exact keys matter more than a Kiota model's defaults."""
    request.headers["Content-Type"] = "application/json"
    request.content = json.dumps(body).encode()
    return request


def mailbox_claims(user_id: str) -> list[Claim]:
    return claim(Scope.mailbox(user_id))


def sharepoint_claims(units: int) -> list[Claim]:
    return claim(Scope.sharepoint(), units)


def tenant_claims(workload: str) -> list[Claim]:
    return claim(Scope.tenant(workload))
