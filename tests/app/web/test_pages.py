"""The dashboard, the customer pages and disclosures, read through the domain services and the disclosure guard."""

from tests.app.web.conftest import People, Web, add_customers, add_datamap, add_demand


class TestDashboard:
    async def test_the_inactivity_chart_and_due_customers(self, web: Web, people: People) -> None:
        async with web.store() as session:
            customers = await add_customers(session)
        await web.sign_in(people.legal)
        page = await web.client.get("/")
        assert page.status_code == 200
        # An inline SVG chart, drawn on the server.
        inactivity = page.text.split('id="inactivity"', 1)[1].split("</section>", 1)[0]
        assert '<svg viewBox="0 0 640' in inactivity
        assert "12+ months" in inactivity
        assert "<script" not in page.text.split("</head>", 1)[1]
        # The silent and the ended customer are due (beyond the inactivity period / the service-end grace).
        due = page.text.split('id="deletion-due"', 1)[1].split("</section>", 1)[0]
        assert customers["silent"].id in due
        assert customers["ended"].id in due
        assert customers["active"].id not in due
        assert customers["secret"].id not in due

    async def test_sections_without_a_service_say_so(self, web: Web, people: People) -> None:
        await web.sign_in(people.auditor)
        page = await web.client.get("/")
        for section in ("pending-plans", "recent-disposals"):
            body = page.text.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
            assert "Not available yet" in body

    async def test_the_label_coverage_chart(self, web: Web, people: People) -> None:
        async with web.store() as session:
            await add_datamap(session, await add_customers(session))
        await web.sign_in(people.auditor)
        page = await web.client.get("/")
        coverage = page.text.split('id="label-coverage"', 1)[1].split("</section>", 1)[0]
        assert '<svg viewBox="0 0 640' in coverage
        assert ">Labeled<" in coverage
        assert ">Category not labeled<" in coverage
        assert "Items labeled" in page.text

    async def test_approvers_do_not_get_the_customer_reports(self, web: Web, people: People) -> None:
        async with web.store() as session:
            customers = await add_customers(session)
        await web.sign_in(people.approvers[0])
        page = await web.client.get("/")
        assert page.status_code == 200
        assert 'id="inactivity"' not in page.text
        assert customers["silent"].legal_name not in page.text
        assert "for admins, legal and auditors" in page.text


class TestCustomers:
    async def test_staff_see_the_registry_and_flags(self, web: Web, people: People) -> None:
        async with web.store() as session:
            customers = await add_customers(session)
        await web.sign_in(people.legal)
        secret = customers["secret"]
        listing = await web.client.get("/customers")
        assert secret.legal_name in listing.text
        page = await web.client.get(f"/customers/{secret.id}")
        assert page.status_code == 200
        assert secret.legal_name in page.text
        assert "ke.toan@secret-" in page.text
        assert "Do not disclose · Không tiết lộ" in page.text

    async def test_an_auditor_sees_a_do_not_disclose_customer_by_id_only(self, web: Web, people: People) -> None:
        async with web.store() as session:
            customers = await add_customers(session)
        await web.sign_in(people.auditor)
        secret, active = customers["secret"], customers["active"]
        listing = await web.client.get("/customers")
        assert secret.legal_name not in listing.text
        assert f"{secret.id} (do-not-disclose)" in listing.text
        page = await web.client.get(f"/customers/{secret.id}")
        assert page.status_code == 200
        assert secret.legal_name not in page.text
        assert "ke.toan@" not in page.text
        assert "Withheld from your role" in page.text
        # A customer that did not ask for it keeps its public name, but not its contacts' addresses.
        public = await web.client.get(f"/customers/{active.id}")
        assert active.legal_name in public.text
        assert "ke.toan@" not in public.text

    async def test_the_data_map_of_a_customer(self, web: Web, people: People) -> None:
        async with web.store() as session:
            customers = await add_customers(session)
            await add_datamap(session, customers)
        await web.sign_in(people.admin)
        page = await web.client.get(f"/customers/{customers['active'].id}")
        data_map = page.text.split('id="data-map"', 1)[1].split("</section>", 1)[0]
        assert "labeled × 3" in data_map
        assert "pending × 1" in data_map
        items = page.text.split('id="data-map-items"', 1)[1].split("</section>", 1)[0]
        assert items.count("<tr>") == 7  # the header and six items
        assert "participant.domain" in items

    async def test_activity_and_due_date(self, web: Web, people: People) -> None:
        async with web.store() as session:
            customers = await add_customers(session)
        await web.sign_in(people.admin)
        page = await web.client.get(f"/customers/{customers['silent'].id}")
        activity = page.text.split('id="activity"', 1)[1].split("</section>", 1)[0]
        assert "inactive" in activity
        assert "due now" in activity
        assert ">500<" in activity.replace(" ", "")

    async def test_an_unknown_customer_is_a_404_page(self, web: Web, people: People) -> None:
        await web.sign_in(people.admin)
        response = await web.client.get("/customers/C-nobody")
        assert response.status_code == 404
        assert "text/html" in response.headers["content-type"]


class TestDisclosures:
    async def test_legal_lists_demands_and_opens_one(self, web: Web, people: People) -> None:
        async with web.store() as session:
            customers = await add_customers(session)
            demand = await add_demand(session, customer_id=customers["active"].id, by=people.legal)
        await web.sign_in(people.legal)
        listing = await web.client.get("/disclosures")
        assert listing.status_code == 200
        assert demand.reference in listing.text
        assert customers["active"].legal_name in listing.text
        only_closed = await web.client.get("/disclosures", params={"status": "closed"})
        assert demand.reference not in only_closed.text
        page = await web.client.get(f"/disclosures/{demand.id}")
        assert page.status_code == 200
        assert demand.legal_basis in page.text
        assert demand.scope_hash in page.text

    async def test_an_auditor_sees_a_do_not_disclose_customer_by_id(self, web: Web, people: People) -> None:
        async with web.store() as session:
            customers = await add_customers(session)
            demand = await add_demand(session, customer_id=customers["secret"].id, by=people.legal)
        await web.sign_in(people.auditor)
        page = await web.client.get(f"/disclosures/{demand.id}")
        assert page.status_code == 200
        assert customers["secret"].legal_name not in page.text
        assert customers["secret"].id in page.text

    async def test_admins_and_approvers_do_not_read_disclosures(self, web: Web, people: People) -> None:
        for person in (people.admin, people.approvers[0]):
            await web.sign_in(person)
            assert (await web.client.get("/disclosures")).status_code == 403

    async def test_a_malformed_demand_id_is_a_400_and_an_unknown_one_a_404(self, web: Web, people: People) -> None:
        await web.sign_in(people.legal)
        assert (await web.client.get("/disclosures/not-an-id")).status_code == 400
        assert (await web.client.get(f"/disclosures/{'0' * 32}")).status_code == 404
