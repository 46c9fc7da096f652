"""Directory reads: the tenant's staff and which of them have a mailbox."""

from collections.abc import AsyncIterator

from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from connectors.graph.models import User
from connectors.graph.paging import Cursor, Page, iterate_pages
from connectors.graph.requests import configured, tenant_claims
from connectors.graph.transport import GraphTransport

USER_FIELDS = ("id", "displayName", "userPrincipalName", "mail", "userType", "accountEnabled", "jobTitle")
MAX_USERS_PAGE = 999


class DirectoryOperations:
    def __init__(self, transport: GraphTransport, sdk: GraphServiceClient) -> None:
        self._transport = transport
        self._sdk = sdk

    def users(self, *, odata_filter: str | None = None, cursor: Cursor | None = None) -> AsyncIterator[Page[User]]:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=list(USER_FIELDS), filter=odata_filter, top=MAX_USERS_PAGE
        )
        first = self._sdk.users.to_get_request_information(configured(query))
        claims = tenant_claims("directory")
        return iterate_pages(self._transport, first, User, claims=lambda _r, _f: claims, cursor=cursor)

    async def staff_mailboxes(self) -> AsyncIterator[User]:
        """Enabled members (not guests) with a mailbox address: the mailboxes Steward scans.

        Graph cannot filter on "has a mailbox"; a member without `mail` has no Exchange mailbox, so those are
        dropped here rather than answered with 404s later.
        """
        async for page in self.users(odata_filter="userType eq 'Member'"):
            for user in page.items:
                if user.mail and user.account_enabled is not False:
                    yield user
