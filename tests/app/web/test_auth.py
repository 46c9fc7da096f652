"""Web sign-in (MSAL authorization code + PKCE against the local tenant), the session cookie, CSRF and roles."""

import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from app.config import Settings
from app.web.auth import SESSION_COOKIE, SIGNIN_COOKIE, safe_next
from emulator.server import EmulatorServer
from tests.app.apps import app_settings
from tests.app.web.conftest import BASE_URL, REDIRECT_URI, SESSION_SECRET, People, Web


@pytest.fixture(scope="module")
def web_backend() -> None:
    """Sign-in, sessions and CSRF never touch the store: SQLite only (the page tests cover both backends)."""
    return None


def set_cookie_attributes(response: httpx.Response, name: str) -> dict[str, str]:
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            morsel = cookie[name]
            return {key: str(morsel[key]) for key in morsel if morsel[key]} | {"value": morsel.value}
    raise AssertionError(f"no Set-Cookie for {name}")


def assert_strict(cookie: dict[str, str]) -> None:
    assert cookie["secure"]
    assert cookie["httponly"]
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"


def forged_session(secret: str, **claims: object) -> str:
    payload = {
        "sub": "00000000-0000-0000-0000-00000000dead",
        "name": "Mallory",
        "upn": "mallory@evil.example",
        "roles": ["Steward.Admin"],
        "csrf": "x" * 43,
        "exp": int(time.time()) + 3600,
    } | claims
    return URLSafeTimedSerializer(secret, salt="steward.web.session").dumps(payload)


class TestSignIn:
    async def test_a_page_without_a_session_redirects_to_sign_in_and_back(self, web: Web) -> None:
        response = await web.client.get("/plans/abc", params={"decision": "approve"})
        assert response.status_code == 303
        assert response.headers["location"] == "/auth/signin?next=%2Fplans%2Fabc%3Fdecision%3Dapprove"

    async def test_htmx_requests_are_sent_to_sign_in_with_hx_redirect(self, web: Web) -> None:
        response = await web.client.get("/customers", headers={"HX-Request": "true"})
        assert response.status_code == 401
        assert response.headers["hx-redirect"] == "/auth/signin?next=%2Fcustomers"

    async def test_sign_in_starts_an_authorization_code_flow_with_pkce(
        self, web: Web, emulator: EmulatorServer
    ) -> None:
        response = await web.client.get("/auth/signin", params={"next": "/customers"})
        assert response.status_code == 303
        target = urlsplit(response.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == (
            f"{emulator.endpoints.authority}/oauth2/v2.0/authorize"
        )
        query = {name: values[0] for name, values in parse_qs(target.query).items()}
        assert query["client_id"] == emulator.endpoints.web_client_id
        assert query["response_type"] == "code"
        assert query["redirect_uri"] == REDIRECT_URI
        assert query["code_challenge_method"] == "S256"
        assert len(query["code_challenge"]) >= 43
        assert query["state"]
        assert query["nonce"]
        scopes = set(query["scope"].split())
        assert f"api://{emulator.endpoints.web_client_id}/access_as_user" in scopes
        assert "openid" in scopes
        assert "offline_access" not in scopes
        assert_strict(set_cookie_attributes(response, SIGNIN_COOKIE))
        # The PKCE verifier travels only inside the signed cookie, never in the URL.
        assert "code_verifier" not in query

    async def test_a_staff_member_signs_in_and_gets_a_signed_session(self, web: Web, people: People) -> None:
        response = await web.sign_in(people.admin, next_path="/customers")
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/customers"
        assert_strict(set_cookie_attributes(response, SESSION_COOKIE))
        # The sign-in cookie is spent.
        assert set_cookie_attributes(response, SIGNIN_COOKIE)["value"] == ""
        page = await web.client.get("/customers")
        assert page.status_code == 200
        assert people.admin.display_name in page.text
        assert ">Admin<" in page.text

    async def test_next_never_leaves_the_site(self, web: Web, people: People) -> None:
        response = await web.sign_in(people.auditor, next_path="//evil.example/steal")
        assert response.headers["location"] == "/"
        for hostile in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", ""):
            assert safe_next(hostile) == "/"
        assert safe_next("/plans/1?decision=approve") == "/plans/1?decision=approve"

    async def test_a_callback_without_the_browsers_sign_in_cookie_is_refused(self, web: Web) -> None:
        response = await web.client.get("/auth/callback", params={"code": "abc", "state": "xyz"})
        assert response.status_code == 401
        assert "please sign in again" in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")

    async def test_a_callback_with_another_state_is_refused(self, web: Web) -> None:
        await web.client.get("/auth/signin")
        response = await web.client.get("/auth/callback", params={"code": "abc", "state": "not-the-one-we-sent"})
        assert response.status_code == 401
        assert "does not match the sign-in this browser started" in response.text
        assert (await web.client.get("/")).status_code == 303

    async def test_entras_refusal_is_shown(self, web: Web) -> None:
        await web.client.get("/auth/signin")
        response = await web.client.get(
            "/auth/callback",
            params={"error": "access_denied", "error_description": "AADSTS65004: User declined to consent."},
        )
        assert response.status_code == 401
        assert "AADSTS65004: User declined to consent." in response.text

    async def test_sign_in_is_unavailable_when_not_configured(self, web: Web) -> None:
        web.running.app.state.web_sign_in.settings = app_settings()
        response = await web.client.get("/auth/signin")
        assert response.status_code == 503
        assert "STEWARD_WEB_CLIENT_ID" in response.text


class TestSessionCookie:
    async def test_a_session_signed_with_another_key_is_ignored(self, web: Web) -> None:
        web.client.cookies.set(SESSION_COOKIE, forged_session("another-secret-" + "k" * 32))
        assert (await web.client.get("/customers")).status_code == 303

    async def test_a_session_whose_roles_were_edited_is_ignored(self, web: Web, people: People) -> None:
        await web.sign_in(people.auditor)
        value = web.client.cookies[SESSION_COOKIE]
        body, _, signature = value.partition(".")
        web.client.cookies.set(SESSION_COOKIE, f"{body}x.{signature}")
        assert (await web.client.get("/")).status_code == 303

    async def test_a_session_ends_with_the_token(self, web: Web) -> None:
        web.client.cookies.set(SESSION_COOKIE, forged_session(SESSION_SECRET, exp=int(time.time()) - 1))
        assert (await web.client.get("/")).status_code == 303

    async def test_sign_out_needs_the_csrf_token_and_clears_the_session(self, web: Web, people: People) -> None:
        await web.sign_in(people.legal)
        refused = await web.client.post("/auth/signout", data={"csrf_token": "wrong"})
        assert refused.status_code == 400
        assert (await web.client.get("/")).status_code == 200
        token = await web.csrf("/")
        response = await web.client.post("/auth/signout", data={"csrf_token": token})
        assert response.status_code == 303
        assert response.headers["location"] == "/auth/signed-out"
        assert set_cookie_attributes(response, SESSION_COOKIE)["value"] == ""
        assert (await web.client.get("/")).status_code == 303


class TestCsrf:
    async def test_a_post_from_another_origin_is_refused(self, web: Web, people: People) -> None:
        await web.sign_in(people.legal)
        token = await web.csrf("/")
        response = await web.client.post(
            "/auth/signout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
        )
        assert response.status_code == 403
        cross_site = await web.client.post(
            "/auth/signout", data={"csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross_site.status_code == 403
        assert (await web.client.get("/")).status_code == 200

    async def test_htmx_posts_carry_the_token_in_a_header(self, web: Web, people: People) -> None:
        await web.sign_in(people.legal)
        token = await web.csrf("/")
        response = await web.client.post("/auth/signout", headers={"X-CSRF-Token": token, "HX-Request": "true"})
        assert response.status_code == 303


class TestRoles:
    @pytest.mark.parametrize(
        ("who", "path", "status"),
        [
            ("auditor", "/audit", 200),
            ("admin", "/audit", 200),
            ("legal", "/audit", 403),
            ("approvers", "/audit", 403),
            ("legal", "/disclosures", 200),
            ("auditor", "/disclosures", 200),
            ("approvers", "/disclosures", 403),
            ("approvers", "/", 200),
            ("auditor", "/customers", 200),
            ("nobody", "/", 403),
            ("nobody", "/customers", 403),
        ],
    )
    async def test_pages_check_roles(self, web: Web, people: People, who: str, path: str, status: int) -> None:
        person = getattr(people, who)
        await web.sign_in(person[0] if isinstance(person, tuple) else person)
        response = await web.client.get(path)
        assert response.status_code == status, response.text
        if status == 403:
            assert "needs one of the roles" in response.text

    async def test_roles_come_from_the_verified_token_not_from_the_directory_at_request_time(
        self, web: Web, people: People, emulator: EmulatorServer
    ) -> None:
        await web.sign_in(people.auditor)
        # Granting a role in Entra takes effect at the next sign-in, like any token claim.
        with emulator.tenant.lock:
            people.auditor.steward_roles.add("Steward.Legal")
        try:
            assert (await web.client.get("/disclosures")).status_code == 200
            assert "Legal" not in (await web.client.get("/")).text.split("who-roles", 1)[1][:200]
        finally:
            with emulator.tenant.lock:
                people.auditor.steward_roles.discard("Steward.Legal")

    async def test_pages_send_security_headers(self, web: Web, people: People) -> None:
        await web.sign_in(people.admin)
        response = await web.client.get("/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


class TestSettings:
    def test_outside_development_a_placeholder_session_secret_is_refused(self) -> None:
        for secret in ("", "changethis", "short"):
            with pytest.raises(ValueError, match="session_secret"):
                Settings(_env_file=None, env="testing", web_client_id="web", session_secret=secret)
        Settings(_env_file=None, env="testing", web_client_id="web", session_secret=SESSION_SECRET)

    def test_development_may_leave_it_empty_and_the_redirect_is_derived(self) -> None:
        settings = Settings(_env_file=None, env="development", public_base_url=BASE_URL)
        assert settings.web_redirect_uri == f"{BASE_URL}/auth/callback"

    def test_the_redirect_uri_must_be_https_off_localhost(self) -> None:
        with pytest.raises(ValueError, match="web_redirect_uri"):
            Settings(_env_file=None, web_redirect_uri="http://steward.example/auth/callback")
        Settings(_env_file=None, web_redirect_uri="http://localhost:8000/auth/callback")
