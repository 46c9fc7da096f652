"""The web UI in a real browser: Debian's chromium, headless, driven by Playwright.

Steward runs over HTTPS against the local tenant; each person signs in through the tenant's own sign-in form
(authorization code + PKCE), every page is opened and photographed, and two approvers approve a plan through
the plan page. Screenshots go to tests/artifacts/web/ (ignored by git), or $STEWARD_TEST_ARTIFACTS.

Chromium trusts exactly the two test certificates (Steward's and the tenant's), pinned by their public keys.
"""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.models import DeletionPlan, PlanStatus
from emulator.server import EmulatorServer
from emulator.state import User
from tests.app.apps import app_settings
from tests.app.web.browser import CHROMIUM_FLAGS, StewardServer, ensure_chromium, leaf_certificate, spki_pin
from tests.app.web.conftest import SESSION_SECRET, People, add_customers, add_datamap, add_demand, add_plan
from tests.conftest import Database, _sqlite_database, migrate

ARTIFACTS = Path(os.environ.get("STEWARD_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts" / "web"))


@pytest.fixture(scope="module")
def chromium() -> Path:
    return ensure_chromium()


@pytest.fixture(scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> Database:
    database = _sqlite_database(tmp_path_factory.mktemp("browser"))
    await migrate(database)
    return database


@pytest.fixture(scope="module")
def steward(emulator: EmulatorServer, people: People, store: Database) -> Iterator[StewardServer]:
    endpoints = emulator.endpoints

    def settings_for(base_url: str) -> Settings:
        return app_settings(
            database_url=store.url,
            tenant_id=endpoints.tenant_id,
            authority_host=endpoints.base_url,
            ca_bundle=endpoints.ca_bundle,
            web_client_id=endpoints.web_client_id,
            web_client_secret=endpoints.web_client_secret,
            public_base_url=base_url,  # the reply URL is derived: <base>/auth/callback (loopback, allowed)
            session_secret=SESSION_SECRET,
            approvers=[user.id for user in (*people.approvers, people.approver_legal)],
        )

    with StewardServer(settings_for) as server:
        yield server


@pytest.fixture(scope="module")
async def browser(chromium: Path, steward: StewardServer, emulator: EmulatorServer) -> AsyncIterator[Browser]:
    tenant_pin = spki_pin(leaf_certificate((emulator.state_dir / "server.pem").read_bytes()))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={steward.pin},{tenant_pin}"],
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser profile; at the end, no page may have broken its Content-Security-Policy."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN")
    page = await context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    try:
        yield page
    finally:
        await context.close()
    assert violations == []


@pytest.fixture(scope="module", autouse=True)
def artifacts() -> Path:
    """The screenshot directory, holding this run's pictures only."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


async def shoot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


async def sign_in(page: Page, steward: StewardServer, user: User, path: str = "/") -> None:
    """Open a page signed out, get sent to the tenant's sign-in form, sign in, come back to the page."""
    assert user.password is not None
    await page.goto(f"{steward.base_url}{path}")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Email or username").fill(user.user_principal_name)
    await page.get_by_label("Password").fill(user.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{steward.base_url}{path}")
    await expect(page.locator(".who-name")).to_have_text(user.display_name)


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Đăng xuất · Sign out").click()
    await expect(page.get_by_role("heading", name="Bạn đã đăng xuất · You are signed out")).to_be_visible()


async def test_every_page_in_chromium_and_two_approvals_through_the_plan_page(
    page: Page, steward: StewardServer, store: Database, people: People, emulator: EmulatorServer
) -> None:
    engine = create_engine(store.url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            customers = await add_customers(session)
            await add_datamap(session, customers)
            plan = await add_plan(
                session,
                customer_ids=[customers["silent"].id],
                requested_by="service:scheduler",
                tenant_id=emulator.endpoints.tenant_id,
                items=60,
            )
            demand = await add_demand(session, customer_id=customers["secret"].id, by=people.legal)

        # An admin: the dashboard with its charts, the registry, one customer.
        await sign_in(page, steward, people.admin)
        await expect(page.get_by_role("heading", name="Tổng quan Dashboard")).to_be_visible()
        await expect(page.locator("#inactivity svg")).to_be_visible()
        await expect(page.locator("#label-coverage svg")).to_be_visible()
        await expect(page.locator("#deletion-due")).to_contain_text(customers["silent"].legal_name)
        await shoot(page, "01-dashboard")
        await page.get_by_role("link", name="Khách hàng Customers").click()
        await expect(page.get_by_role("cell", name=customers["secret"].legal_name)).to_be_visible()
        await shoot(page, "02-customers")
        await page.get_by_role("link", name=customers["silent"].legal_name).first.click()
        await expect(page.locator("#activity")).to_contain_text("due now")
        await expect(page.locator("#data-map-items tbody tr")).to_have_count(6)
        await shoot(page, "03-customer")
        await page.goto(f"{steward.base_url}/audit")
        await page.get_by_role("button", name="Kiểm tra ngay · Verify now").click()
        await expect(page.locator("#verification")).to_contain_text("Intact.")
        await shoot(page, "04-audit-verify")
        await sign_out(page)

        # Legal: the compelled disclosures.
        await sign_in(page, steward, people.legal, "/disclosures")
        await page.get_by_role("link", name=demand.authority).click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text(demand.reference)
        await shoot(page, "05-disclosure")
        await sign_out(page)

        # The first approver follows the approval link of a Workflows card.
        first, second = people.approvers
        link = f"/plans/{plan.id}?decision=approve&manifest={plan.manifest_hash}"
        await sign_in(page, steward, first, link)
        await expect(page.locator("#manifest-count")).to_contain_text("62 of 62 items")
        await shoot(page, "06-plan")
        # Filters swap the manifest table in place (htmx) and keep the address shareable.
        await page.locator("select[name=reason]").select_option("legal_hold")
        await expect(page.locator("#manifest-count")).to_contain_text("1 of 62 items")
        assert "reason=legal_hold" in page.url
        await shoot(page, "07-plan-filtered")
        await page.get_by_role("checkbox").check()
        await page.get_by_role("button", name="Phê duyệt · Approve").click()
        await expect(page.get_by_role("status")).to_contain_text("Your approval is recorded")
        await shoot(page, "08-plan-approved-once")
        await sign_out(page)

        await sign_in(page, steward, second, f"/plans/{plan.id}")
        await page.get_by_role("checkbox").check()
        await page.get_by_role("button", name="Phê duyệt · Approve").click()
        await expect(page.locator("h1 .badge")).to_have_text("approved")
        await shoot(page, "09-plan-approved")

        async with create_sessionmaker(engine)() as session:
            approved = await session.get(DeletionPlan, plan.id)
            assert approved is not None
            assert approved.status == PlanStatus.approved
    finally:
        await engine.dispose()


async def test_a_person_without_a_role_gets_a_clear_refusal(page: Page, steward: StewardServer, people: People) -> None:
    await sign_in(page, steward, people.nobody)
    response = await page.goto(f"{steward.base_url}/")
    assert response is not None
    assert response.status == 403
    await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    await shoot(page, "10-no-role")
