"""The storage posture report: do the privacy policy's storage promises hold in the tenant right now?

The policy promises that customer information is kept in Microsoft's cloud "with SSL encryption in transit and
two-factor authentication". Two checks follow from it:

- MFA: every member of staff who can reach customer data has a strong method registered (Graph's
  authentication-method registration details, `isMfaRegistered`). Who can reach customer data: every staff
  mailbox owner (customers mail anyone), and every member of a customer site, meaning a site the policy's site
  rules attribute to a customer: people granted access to its document libraries, and people who created or
  changed files there.
- TLS: every outbound URL Steward uses is https, settings validation refuses a plain-http Graph URL, and the
  Graph transport refuses to follow a plain-http link.

Each violation names the user (or the setting) and what to do about it. Customer sites are named through the
do-not-disclose guard.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification.detectors import IdentifierHasher
from app.classification.registry import CustomerIndex, CustomerRecord, normalize_site
from app.config import Settings
from app.customers.repository import CustomerRepository
from app.models import Customer
from app.policy import Policy
from app.posture.schemas import PostureReport, ReachRead, StaffAccessRead, TlsCheckRead, ViolationRead
from app.privacy.graph import GraphAccess
from app.privacy.guard import DisclosureGuard
from connectors.graph.errors import UntrustedLink
from connectors.graph.models import Site, User, UserRegistrationDetails
from connectors.graph.requests import sharepoint_claims

MFA_REMEDY = (
    "Ask {user} to register a strong method (Microsoft Authenticator or a FIDO2 security key) at "
    "https://aka.ms/mysecurityinfo, and require MFA for the account with a Conditional Access policy."
)
# Only the site rules of the index are used here: no identifier is ever hashed with this key.
_SITE_MATCHING_ONLY = IdentifierHasher(b"posture: site rules only")
LIST_RU = 2


@dataclass
class Access:
    user: User
    reaches: dict[tuple[str, str], ReachRead] = field(default_factory=dict)

    def add(self, reach: ReachRead) -> None:
        self.reaches.setdefault((reach.kind, reach.name), reach)


def _customer_sites(site: Site, index: CustomerIndex) -> tuple[str, ...]:
    found: set[str] = set()
    for value in (site.web_url, site.name, site.display_name):
        if value:
            normalized = normalize_site(value)
            for location in index.site_locations:
                found.update(location.customers(normalized))
    return tuple(sorted(found))


def _site_label(site: Site, customers: Iterable[Customer], guard: DisclosureGuard) -> str:
    listed = list(customers)
    if any(customer.do_not_disclose for customer in listed) or not listed:
        # Site names carry the customer's name: a do-not-disclose customer's site is named by customer only.
        return "customer site of " + ", ".join(guard.display_name(customer) for customer in listed)
    return site.display_name or site.name or site.id


class SiteMembers(Protocol):
    async def members(self, drive_id: str) -> set[str]: ...


class GraphSiteMembers:
    """People who can reach a drive: explicit grants on its root, and the people who created or changed files."""

    def __init__(self, graph: GraphAccess) -> None:
        self._connector = graph.connector
        self._sdk = graph.client.sdk

    async def members(self, drive_id: str) -> set[str]:
        request = self._sdk.drives.by_drive_id(drive_id).items.by_drive_item_id("root").permissions
        response = await self._connector.transport.send(
            request.to_get_request_information(), claims=sharepoint_claims(LIST_RU)
        )
        people: set[str] = set()
        for grant in json.loads(response.content or b"{}").get("value", []):
            for holder in (grant.get("grantedToV2"), grant.get("grantedTo")):
                user = (holder or {}).get("user") or {}
                if user.get("id"):
                    people.add(str(user["id"]))
        pages = self._connector.files.drive_delta(drive_id, select=("id", "createdBy", "lastModifiedBy", "deleted"))
        async for page in pages:
            for item in page.items:
                for identity in (item.created_by, item.last_modified_by):
                    if identity is not None and identity.user is not None and identity.user.id:
                        people.add(identity.user.id)
        return people


def tls_checks(settings: Settings, graph: GraphAccess) -> list[TlsCheckRead]:
    checks: list[TlsCheckRead] = []
    urls: dict[str, str] = {
        "graph_base_url": settings.graph_base_url,
        "authority_host": settings.authority_host,
        "teams_service_url": settings.teams_service_url,
        "teams_openid_metadata_url": settings.teams_openid_metadata_url,
        "teams_channel_issuer": settings.teams_channel_issuer,
        "teams_bot_token_endpoint": settings.teams_bot_token_endpoint,
        "teams_webhook_url": settings.teams_webhook_url.get_secret_value(),
    }
    for name, url in urls.items():
        if not url:
            continue
        scheme = urlsplit(url).scheme
        # Only the scheme is reported: the webhook URL carries its own signature.
        checks.append(TlsCheckRead(name=name, ok=scheme == "https", detail=f"STEWARD_{name.upper()} uses {scheme}://"))
    host = urlsplit(settings.graph_base_url).hostname or "graph.microsoft.com"
    plain = f"http://{host}/v1.0"
    try:
        Settings.model_validate({"graph_base_url": plain, "graph_allowed_hosts": [host]})
    except ValidationError as error:
        refused = any(tuple(e["loc"]) == ("graph_base_url",) for e in error.errors())
    else:
        refused = False
    checks.append(
        TlsCheckRead(
            name="settings_refuse_plain_http",
            ok=refused,
            detail="settings validation refuses an http:// Graph URL"
            if refused
            else "an http:// Graph URL is accepted",
        )
    )
    try:
        graph.connector.transport.check_link(f"{plain}/users")
    except UntrustedLink:
        followed = False
    else:
        followed = True
    checks.append(
        TlsCheckRead(
            name="transport_refuses_plain_http",
            ok=not followed,
            detail="the Graph transport follows an http:// link"
            if followed
            else "the Graph transport refuses http:// links",
        )
    )
    return checks


def _tls_violation(check: TlsCheckRead) -> ViolationRead:
    remedy = (
        f"Set {check.detail.split(' ', 1)[0]} to an https:// URL."
        if check.name not in ("settings_refuse_plain_http", "transport_refuses_plain_http")
        else "Do not deploy this build: Steward must refuse plain-http connections to Microsoft Graph."
    )
    return ViolationRead(
        check="tls",
        user_id=None,
        user_principal_name=None,
        display_name=None,
        problem=check.detail,
        remedy=remedy,
        reaches=[],
    )


async def build_report(
    session: AsyncSession,
    *,
    graph: GraphAccess,
    settings: Settings,
    policy: Policy,
    guard: DisclosureGuard,
    now: datetime,
    site_members: "SiteMembers | None" = None,
) -> PostureReport:
    connector = graph.connector
    members = site_members or GraphSiteMembers(graph)
    customers = {customer.id: customer for customer in await CustomerRepository(session).all()}
    index = CustomerIndex(
        [
            CustomerRecord(
                id=c.id, legal_name=c.legal_name, domains=tuple(c.domains), do_not_disclose=c.do_not_disclose
            )
            for c in customers.values()
        ],
        policy,
        hasher=_SITE_MATCHING_ONLY,
    )
    staff: dict[str, Access] = {}
    async for page in connector.directory.users(odata_filter="userType eq 'Member'"):
        for user in page.items:
            staff[user.id] = Access(user)
    reach: dict[str, Access] = {}
    async for user in connector.directory.staff_mailboxes():
        access = reach.setdefault(user.id, staff.get(user.id) or Access(user))
        access.add(ReachRead(kind="mailbox", name=user.mail or user.user_principal_name or user.id, customer_ids=[]))
    sites = 0
    async for site_page in connector.files.sites():
        for site in site_page.items:
            owners = _customer_sites(site, index)
            if not owners:
                continue
            sites += 1
            label = _site_label(site, (customers[c] for c in owners), guard)
            for drive in await connector.files.site_drives(site.id):
                for user_id in await members.members(drive.id):
                    if user_id in staff:
                        reach.setdefault(user_id, staff[user_id]).add(
                            ReachRead(kind="customer_site", name=label, customer_ids=list(owners))
                        )
    details: dict[str, UserRegistrationDetails] = {}
    async for detail_page in connector.posture.mfa_registration():
        for registration in detail_page.items:
            details[registration.id] = registration
    rows: list[StaffAccessRead] = []
    violations: list[ViolationRead] = []
    for user_id, access in sorted(reach.items(), key=lambda entry: entry[1].user.user_principal_name or entry[0]):
        detail = details.get(user_id)
        registered = detail is not None and detail.is_mfa_registered
        reaches = list(access.reaches.values())
        row = StaffAccessRead(
            user_id=user_id,
            user_principal_name=access.user.user_principal_name,
            display_name=access.user.display_name,
            mfa_registered=registered,
            methods=list(detail.methods_registered) if detail else [],
            reaches=reaches,
        )
        rows.append(row)
        if not registered:
            problem = (
                "no strong MFA method is registered"
                if detail is not None
                else "absent from the MFA registration report"
            )
            violations.append(
                ViolationRead(
                    check="mfa",
                    user_id=user_id,
                    user_principal_name=row.user_principal_name,
                    display_name=row.display_name,
                    problem=f"{problem}, yet the account can reach customer data",
                    remedy=MFA_REMEDY.format(user=row.user_principal_name or user_id),
                    reaches=reaches,
                )
            )
    tls = tls_checks(settings, graph)
    violations.extend(_tls_violation(check) for check in tls if not check.ok)
    return PostureReport(
        generated_at=now,
        promises_hold=not violations,
        staff_checked=len(rows),
        customer_sites=sites,
        staff=rows,
        tls=tls,
        violations=violations,
    )
