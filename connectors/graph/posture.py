"""Tenant posture reads: MFA registration details and eDiscovery hold status.

Both are small, rarely-read collections: parsed with the same pydantic models, charged to tenant-wide scopes
(the identity reports bucket allows only a few requests per 10 seconds; eDiscovery a few per minute).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar

from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.security.cases.ediscovery_cases.item.noncustodial_data_sources.noncustodial_data_sources_request_builder import (  # noqa: E501
    NoncustodialDataSourcesRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient
from pydantic import BaseModel

from connectors.graph.models import (
    Custodian,
    EdiscoveryCase,
    GraphModel,
    SiteSource,
    UserRegistrationDetails,
    UserSource,
)
from connectors.graph.paging import Cursor, Page, iterate_pages
from connectors.graph.requests import configured, tenant_claims
from connectors.graph.transport import GraphTransport

M = TypeVar("M", bound=BaseModel)
# Anything but "notApplied" is treated as held: "applying" and "removing" are holds in transition, and a
# wrong "held" only delays a deletion while a wrong "not held" destroys evidence.
NOT_HELD = "notApplied"


class NoncustodialSource(GraphModel):
    id: str
    display_name: str | None = None
    hold_status: str | None = None
    data_source: SiteSource | None = None


@dataclass(frozen=True, slots=True)
class HeldSource:
    case_id: str
    case_name: str | None
    hold_status: str
    email: str | None = None  # a custodian's mailbox (and OneDrive, see site_url)
    site_url: str | None = None
    site_id: str | None = None

    @property
    def is_held(self) -> bool:
        return self.hold_status != NOT_HELD


@dataclass
class HoldReport:
    sources: list[HeldSource] = field(default_factory=list)

    def held_mailboxes(self) -> set[str]:
        return {s.email.lower() for s in self.sources if s.is_held and s.email}

    def held_site_urls(self) -> set[str]:
        return {s.site_url.rstrip("/").lower() for s in self.sources if s.is_held and s.site_url}

    def held_site_ids(self) -> set[str]:
        return {s.site_id for s in self.sources if s.is_held and s.site_id}


class PostureOperations:
    def __init__(self, transport: GraphTransport, sdk: GraphServiceClient) -> None:
        self._transport = transport
        self._sdk = sdk

    def mfa_registration(self, *, cursor: Cursor | None = None) -> AsyncIterator[Page[UserRegistrationDetails]]:
        first = self._sdk.reports.authentication_methods.user_registration_details.to_get_request_information()
        claims = tenant_claims("reports")
        return iterate_pages(
            self._transport, first, UserRegistrationDetails, claims=lambda _r, _f: claims, cursor=cursor
        )

    async def holds(self) -> HoldReport:
        """Every source under an eDiscovery hold: custodians' mailboxes and OneDrives, and held sites."""
        report = HoldReport()
        cases_builder = self._sdk.security.cases.ediscovery_cases
        for case in await self._all(cases_builder.to_get_request_information(), EdiscoveryCase):
            case_builder = cases_builder.by_ediscovery_case_id(case.id)
            for custodian in await self._all(case_builder.custodians.to_get_request_information(), Custodian):
                custodian_builder = case_builder.custodians.by_ediscovery_custodian_id(custodian.id)
                for user_source in await self._all(
                    custodian_builder.user_sources.to_get_request_information(), UserSource
                ):
                    report.sources.append(
                        HeldSource(
                            case.id,
                            case.display_name,
                            user_source.hold_status or custodian.hold_status or NOT_HELD,
                            email=user_source.email or custodian.email,
                            site_url=user_source.site_web_url,
                        )
                    )
                for site_source in await self._all(
                    custodian_builder.site_sources.to_get_request_information(), SiteSource
                ):
                    report.sources.append(self._site(case, site_source, custodian.hold_status))
            query = NoncustodialDataSourcesRequestBuilder.NoncustodialDataSourcesRequestBuilderGetQueryParameters(
                expand=["dataSource"]
            )
            request = case_builder.noncustodial_data_sources.to_get_request_information(configured(query))
            for source in await self._all(request, NoncustodialSource):
                if source.data_source is not None:
                    report.sources.append(self._site(case, source.data_source, source.hold_status))
        return report

    @staticmethod
    def _site(case: EdiscoveryCase, source: SiteSource, fallback_status: str | None) -> HeldSource:
        site = source.site
        return HeldSource(
            case.id,
            case.display_name,
            source.hold_status or fallback_status or NOT_HELD,
            site_url=site.web_url if site else None,
            site_id=site.id if site else source.id,
        )

    async def _all(self, request: RequestInformation, item_type: type[M]) -> list[M]:
        claims = tenant_claims("ediscovery")
        pages = iterate_pages(self._transport, request, item_type, claims=lambda _r, _f: claims)
        return [item async for page in pages for item in page.items]
