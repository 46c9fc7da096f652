"""The real msgraph-sdk GraphServiceClient, signed in with azure-identity, against the emulator over HTTPS."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration

from emulator.mail.store import MSIP_LABELS_PROPERTY, Mailbox
from emulator.server import EmulatorServer
from emulator.state import Tenant, User
from tests.emulator.mail.conftest import customer_message

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
IMMUTABLE = 'IdType="ImmutableId"'


@pytest.fixture
async def sdk(live: EmulatorServer) -> AsyncIterator[Any]:
    """GraphServiceClient wired as sdk-notes.md section 3 describes, with a real client-secret sign-in."""
    from azure.identity.aio import ClientSecretCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_request_adapter import options as graph_default_options
    from msgraph.graph_service_client import GraphServiceClient
    from msgraph_core import GraphClientFactory

    endpoints = live.endpoints
    credential = ClientSecretCredential(
        endpoints.tenant_id,
        endpoints.client_id,
        endpoints.client_secret,
        authority=endpoints.base_url,
        connection_verify=endpoints.ca_bundle,
    )
    http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=endpoints.ca_bundle), timeout=30, trust_env=False)
    pool = http._transport
    options = dict(graph_default_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(max_retries=0, delay=0)
    http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"])
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = endpoints.graph_url
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await pool.aclose()  # the middleware transport does not close the pool it wraps
        await credential.close()


@pytest.fixture
async def control(live: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator's control plane over the same HTTPS endpoint."""
    verify = ssl.create_default_context(cafile=live.endpoints.ca_bundle)
    async with httpx.AsyncClient(base_url=live.endpoints.control_url, verify=verify, trust_env=False) as client:
        yield client


def prefer(*values: str) -> RequestConfiguration[Any]:
    config: RequestConfiguration[Any] = RequestConfiguration()
    for value in values:
        config.headers.add("Prefer", value)
    return config


async def test_paging_messages_with_page_iterator_and_next_links(sdk: Any, owner: User, mailbox: Mailbox):
    from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
        MessagesRequestBuilder,
    )
    from msgraph_core.tasks.page_iterator import PageIterator

    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(top=5, select=["subject", "from"])
    messages = sdk.users.by_user_id(owner.id).mail_folders.by_mail_folder_id("inbox").messages
    first = await messages.get(request_configuration=RequestConfiguration(query_parameters=query))
    assert len(first.value) == 5
    assert first.odata_next_link

    seen: list[str] = []

    def collect(message: Any) -> bool:
        seen.append(message.id)
        return True  # PageIterator stops at the first falsy answer

    await PageIterator(first, sdk.request_adapter).iterate(collect)
    expected = sorted(mailbox.rest_id(m) for m in mailbox.by_name["inbox"].messages.values())
    assert sorted(seen) == expected

    manual: list[str] = [m.id for m in first.value]
    page = first
    while page.odata_next_link:
        page = await messages.with_url(page.odata_next_link).get()
        assert all(m.subject is not None and m.body is None for m in page.value)  # $select carried
        manual += [m.id for m in page.value]
    assert sorted(manual) == expected


async def delta_round(builder: Any, *, start: Any = None, page_size: int = 5) -> tuple[list[Any], str]:
    """Loop a delta round by hand (PageIterator loses the deltaLink): (items, deltaLink)."""
    items: list[Any] = []
    page = await (start or builder).get(request_configuration=prefer(f"odata.maxpagesize={page_size}"))
    while True:
        items += page.value
        if page.odata_delta_link:
            return items, page.odata_delta_link
        page = await builder.with_url(page.odata_next_link).get(
            request_configuration=prefer(f"odata.maxpagesize={page_size}")
        )


async def test_delta_per_folder_reports_runtime_changes(
    sdk: Any, control: httpx.AsyncClient, owner: User, mailbox: Mailbox
):
    delta = sdk.users.by_user_id(owner.id).mail_folders.by_mail_folder_id("inbox").messages.delta
    initial, delta_link = await delta_round(delta)
    assert sorted(m.id for m in initial) == sorted(
        mailbox.rest_id(m) for m in mailbox.by_name["inbox"].messages.values()
    )

    inbox = mailbox.by_name["inbox"].newest_first()
    changed, deleted, moved = mailbox.rest_id(inbox[0]), mailbox.rest_id(inbox[1]), mailbox.rest_id(inbox[2])
    added = await control.post(
        f"/mail/mailboxes/{owner.id}/messages",
        json={
            "subject": "Yêu cầu mới",
            "body": "MST 0312687878",
            "from": "ke.toan@example.com",
            "customerIds": ["C0001"],
        },
    )
    assert added.status_code == 201
    assert (await control.patch(f"/mail/mailboxes/{owner.id}/messages/{changed}", json={"isRead": False})).is_success
    assert (await control.delete(f"/mail/mailboxes/{owner.id}/messages/{deleted}")).status_code == 204
    from msgraph.generated.users.item.messages.item.move.move_post_request_body import MovePostRequestBody

    await (
        sdk.users.by_user_id(owner.id)
        .messages.by_message_id(moved)
        .move.post(MovePostRequestBody(destination_id="archive"))
    )

    changes, new_link = await delta_round(delta, start=delta.with_url(delta_link), page_size=2)
    removed = sorted(m.id for m in changes if m.additional_data.get("@removed") == {"reason": "deleted"})
    present = sorted(m.id for m in changes if "@removed" not in m.additional_data)
    assert removed == sorted([deleted, moved])
    assert present == sorted([changed, added.json()["id"]])
    assert next(m for m in changes if m.id == changed).is_read is False
    assert new_link
    assert new_link != delta_link


async def test_label_and_category_patch_read_back_with_expand(sdk: Any, owner: User, mailbox: Mailbox):
    from msgraph.generated.models.message import Message
    from msgraph.generated.models.single_value_legacy_extended_property import SingleValueLegacyExtendedProperty
    from msgraph.generated.users.item.messages.item.message_item_request_builder import MessageItemRequestBuilder

    target = customer_message(mailbox)
    item = sdk.users.by_user_id(owner.id).messages.by_message_id(mailbox.rest_id(target))
    label = "MSIP_Label_3a1f7c2e-0000-4000-8000-000000000001_Enabled=true"
    patch = Message(
        categories=["Steward: Confidential"],
        single_value_extended_properties=[SingleValueLegacyExtendedProperty(id=MSIP_LABELS_PROPERTY, value=label)],
    )
    updated = await item.patch(patch)
    assert updated.categories == ["Steward: Confidential"]

    query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
        select=["subject", "categories"],
        expand=[f"singleValueExtendedProperties($filter=id eq '{MSIP_LABELS_PROPERTY}')"],
    )
    read = await item.get(request_configuration=RequestConfiguration(query_parameters=query))
    assert read.categories == ["Steward: Confidential"]
    assert [(p.id, p.value) for p in read.single_value_extended_properties] == [(MSIP_LABELS_PROPERTY, label)]
    assert target.ext_value(MSIP_LABELS_PROPERTY) == label


async def test_move_returns_a_new_id_and_the_immutable_id_stays(sdk: Any, owner: User, mailbox: Mailbox):
    from msgraph.generated.users.item.messages.item.move.move_post_request_body import MovePostRequestBody

    target = customer_message(mailbox)
    rest_id = mailbox.rest_id(target)
    messages = sdk.users.by_user_id(owner.id).messages
    immutable_before = (await messages.by_message_id(rest_id).get(request_configuration=prefer(IMMUTABLE))).id
    moved = await messages.by_message_id(rest_id).move.post(MovePostRequestBody(destination_id="archive"))
    assert moved.id != rest_id
    assert moved.parent_folder_id == mailbox.by_name["archive"].id
    immutable_after = (await messages.by_message_id(moved.id).get(request_configuration=prefer(IMMUTABLE))).id
    assert immutable_after == immutable_before == mailbox.immutable_id(target)


async def test_permanent_delete(sdk: Any, owner: User, mailbox: Mailbox):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    target = customer_message(mailbox)
    item = sdk.users.by_user_id(owner.id).messages.by_message_id(mailbox.immutable_id(target))
    assert await item.permanent_delete.post() is None
    with pytest.raises(ODataError) as raised:
        await item.get()
    assert raised.value.response_status_code == 404
    assert raised.value.error is not None
    assert raised.value.error.code == "ErrorItemNotFound"


async def test_send_mail_reaches_the_outbox(
    sdk: Any, control: httpx.AsyncClient, tenant: Tenant, owner: User, mailbox: Mailbox
):
    from msgraph.generated.models.body_type import BodyType
    from msgraph.generated.models.email_address import EmailAddress
    from msgraph.generated.models.item_body import ItemBody
    from msgraph.generated.models.message import Message
    from msgraph.generated.models.recipient import Recipient
    from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

    contact = tenant.customers[2].contacts[0]
    body = SendMailPostRequestBody(
        message=Message(
            subject="Xác nhận xóa dữ liệu",
            body=ItemBody(content_type=BodyType.Text, content="Chúng tôi đã xóa dữ liệu theo yêu cầu."),
            to_recipients=[Recipient(email_address=EmailAddress(address=contact.email, name=contact.name))],
        ),
        save_to_sent_items=True,
    )
    sent_before = mailbox.by_name["sentitems"].total
    assert await sdk.users.by_user_id(owner.id).send_mail.post(body) is None
    outbox = (await control.get("/mail/outbox")).json()
    assert outbox[-1]["external"] == [contact.email]
    assert outbox[-1]["customers"] == [tenant.customers[2].id]
    assert outbox[-1]["subject"] == "Xác nhận xóa dữ liệu"
    assert mailbox.by_name["sentitems"].total == sent_before + 1


async def test_evicted_delta_tokens_are_410(sdk: Any, control: httpx.AsyncClient, owner: User):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    delta = sdk.users.by_user_id(owner.id).mail_folders.by_mail_folder_id("sentitems").messages.delta
    _, delta_link = await delta_round(delta, page_size=50)
    evicted = await control.post(f"/mail/mailboxes/{owner.id}/evict-delta-tokens")
    assert evicted.json()["evicted"] >= 1
    with pytest.raises(ODataError) as raised:
        await delta.with_url(delta_link).get()
    assert raised.value.response_status_code == 410
    assert raised.value.error is not None
    assert raised.value.error.code == "SyncStateNotFound"
    again, _ = await delta_round(delta, page_size=50)  # a fresh initial round recovers
    assert again
