"""Sign-in through an OpenID Connect provider, over real HTTP.

The happy path runs against oidc-provider-mock; the refusals that need a
token the mock will not issue (expired, wrong audience, foreign key) run
against ForgingProvider, a small provider whose tokens each test shapes.
"""

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.messages import get_messages
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from jwt.algorithms import RSAAlgorithm
from oidc_provider_mock import run_server_in_thread
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from accounts.models import User
from accounts.oidc import DiscoveryError, provider_metadata
from tests.factories import make_user
from tests.test_health import run_site_code

CLIENT_ID = "photosite"
CLIENT_SECRET = "photosite-test-secret"
COGNITO_BACKEND = "accounts.backends.CognitoBackend"
CALLBACK_URL = "http://testserver/oidc/callback/"


def use_provider(settings: Any, issuer: str) -> None:
    """Switch the site to sign-in through the provider at issuer."""
    settings.OIDC_ISSUER = issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        COGNITO_BACKEND,
    ]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "accounts.oidc.SessionRefresh"]
    settings.OIDC_OP_LOGOUT_URL_METHOD = "accounts.oidc.provider_logout_url"


@pytest.fixture(scope="session")
def mock_provider() -> Iterator[str]:
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def oidc(settings: Any, mock_provider: str, db: None) -> str:
    use_provider(settings, mock_provider)
    return mock_provider


class ForgingProvider:
    """An OpenID provider whose id tokens each test shapes."""

    subject = "forged-subject"

    def __init__(self) -> None:
        self.published_key = rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        self.issuer = ""
        self.reset()

    def reset(self) -> None:
        self.signing_key = self.published_key
        self.key_id = "published"
        self.claims: dict[str, object] = {}
        self.nonces: dict[str, str] = {}
        self.discovery_requests = 0

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        return self.answer(request)(environ, start_response)

    def answer(self, request: Request) -> Response:
        if request.path == "/.well-known/openid-configuration":
            self.discovery_requests += 1
            return json_response(self.metadata())
        if request.path == "/authorize":
            code = secrets.token_urlsafe(8)
            self.nonces[code] = request.args["nonce"]
            query = urlencode({"code": code, "state": request.args["state"]})
            location = f"{request.args['redirect_uri']}?{query}"
            return Response(status=302, headers={"Location": location})
        if request.path == "/token":
            code = request.form["code"]
            tokens = {"access_token": code, "token_type": "Bearer"}
            return json_response({**tokens, "id_token": self.id_token(code)})
        if request.path == "/userinfo":
            return json_response({"sub": self.subject, "email": "forged@example.com"})
        if request.path == "/jwks":
            jwk = json.loads(RSAAlgorithm.to_jwk(self.published_key.public_key()))
            return json_response(
                {"keys": [{**jwk, "kid": "published", "alg": "RS256"}]}
            )
        return Response(status=404)

    def metadata(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
        }

    def id_token(self, code: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": self.subject,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonces.pop(code),
            **self.claims,
        }
        headers = {"kid": self.key_id}
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers=headers)


def json_response(body: object) -> Response:
    return Response(json.dumps(body), content_type="application/json")


@pytest.fixture(scope="session")
def forging_provider() -> Iterator[ForgingProvider]:
    provider = ForgingProvider()
    server = make_server("127.0.0.1", 0, provider, threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield provider
    server.shutdown()
    thread.join(5)


@pytest.fixture
def forger(
    settings: Any, forging_provider: ForgingProvider, db: None
) -> ForgingProvider:
    forging_provider.reset()
    use_provider(settings, forging_provider.issuer)
    return forging_provider


def start_sign_in(client: Client) -> str:
    """Press "Sign in with Cognito"; return where the site sends the browser."""
    response = client.get(reverse("oidc_authentication_init"))
    assert response.status_code == 302
    return str(response["Location"])


def sign_in_at_mock(issuer: str, authorize_url: str, sub: str, **claims: str) -> str:
    """Sign in at the mock provider as sub; return the site's callback URL."""
    requests.put(f"{issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()
    answer = requests.post(
        authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def sign_in(client: Client, issuer: str, sub: str, **claims: str) -> HttpResponse:
    callback_url = sign_in_at_mock(issuer, start_sign_in(client), sub, **claims)
    return client.get(callback_url)


def sign_in_at_forger(client: Client) -> HttpResponse:
    answer = requests.get(start_sign_in(client), allow_redirects=False, timeout=10)
    return client.get(answer.headers["Location"])


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **params}
    return urlunsplit(parts._replace(query=urlencode(query)))


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def messages_of(response: HttpResponse) -> str:
    request = response.wsgi_request  # type: ignore[attr-defined]
    return " ".join(str(message) for message in get_messages(request))


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def sign_in_to_site_through_provider(client: Client, user: User) -> None:
    """Start a session as though the provider had just signed user in."""
    client.force_login(user, backend=COGNITO_BACKEND)
    session = client.session
    session["oidc_id_token_expiration"] = time.time() + 900
    session.save()


def expire_refresh_window(client: Client) -> None:
    session = client.session
    session["oidc_id_token_expiration"] = time.time() - 1
    session.save()


def test_sign_in_sends_state_nonce_and_pkce_to_discovered_endpoint(
    client: Client, oidc: str
) -> None:
    location = start_sign_in(client)

    params = query_of(location)
    assert location.startswith(f"{oidc}/oauth2/authorize?")
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == CALLBACK_URL
    assert params["scope"] == "openid email profile"
    assert params["code_challenge_method"] == "S256"
    started = client.session["oidc_states"][params["state"]]
    assert started["nonce"] == params["nonce"]
    verifier_hash = hashlib.sha256(started["code_verifier"].encode()).digest()
    challenge = base64.urlsafe_b64encode(verifier_hash).rstrip(b"=").decode()
    assert params["code_challenge"] == challenge


def test_first_sign_in_creates_user_from_claims(client: Client, oidc: str) -> None:
    response = sign_in(
        client, oidc, "sub-ada", **{"cognito:username": "ada", "email": "a@x.org"}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("gallery:photo_list")
    user = User.objects.get()
    assert (user.username, user.email, user.oidc_subject) == (
        "ada",
        "a@x.org",
        "sub-ada",
    )
    assert not user.has_usable_password()
    assert signed_in_user_id(client) == str(user.pk)


def test_later_sign_in_matches_subject_not_email(client: Client, oidc: str) -> None:
    sign_in(client, oidc, "sub-bo", preferred_username="bo", email="old@x.org")
    client.logout()

    sign_in(client, oidc, "sub-bo", preferred_username="bo", email="new@x.org")

    user = User.objects.get()
    assert user.email == "new@x.org"
    assert signed_in_user_id(client) == str(user.pk)


def test_sign_in_with_email_of_local_account_is_refused(
    client: Client, oidc: str
) -> None:
    local = make_user(username="cy", email="cy@example.com")

    response = sign_in(client, oidc, "sub-cy", email="CY@example.com")

    assert response["Location"] == reverse("accounts:login")
    assert "already exists" in messages_of(response)
    assert signed_in_user_id(client) is None
    assert list(User.objects.all()) == [local]
    local.refresh_from_db()
    assert local.oidc_subject is None


def test_username_taken_by_local_account_gets_a_number(
    client: Client, oidc: str
) -> None:
    make_user(username="dee", email="dee@example.com")

    sign_in(client, oidc, "sub-dee", preferred_username="dee", email="d@x.org")

    assert User.objects.get(oidc_subject="sub-dee").username == "dee-2"


def test_sign_in_to_switched_off_account_is_refused(client: Client, oidc: str) -> None:
    make_user(username="eve", oidc_subject="sub-eve", is_active=False)

    response = sign_in(client, oidc, "sub-eve", email="eve@x.org")

    assert "switched off" in messages_of(response)
    assert signed_in_user_id(client) is None


@pytest.mark.parametrize("replay", [False, True], ids=["unknown", "replayed"])
def test_callback_with_bad_state_is_refused(
    client: Client, oidc: str, replay: bool
) -> None:
    callback_url = sign_in_at_mock(oidc, start_sign_in(client), "sub-fay")
    if replay:
        client.get(callback_url)
        client.logout()
    else:
        callback_url = with_query(callback_url, state="forged-state")

    response = client.get(callback_url)

    assert response["Location"] == reverse("accounts:login")
    assert "state is unknown" in messages_of(response)
    assert signed_in_user_id(client) is None


def test_callback_with_unknown_state_leaves_session_alone(
    client: Client, oidc: str
) -> None:
    user = make_user(oidc_subject="sub-ned")
    sign_in_to_site_through_provider(client, user)

    response = client.get(
        reverse("oidc_authentication_callback"), {"code": "x", "state": "made-up"}
    )

    assert "state is unknown" in messages_of(response)
    assert signed_in_user_id(client) == str(user.pk)


def test_token_with_wrong_nonce_is_refused(client: Client, oidc: str) -> None:
    # The provider is asked for a token for another request's nonce, as an
    # attacker replaying a token would hold.
    authorize_url = with_query(start_sign_in(client), nonce="another-request")

    response = client.get(sign_in_at_mock(oidc, authorize_url, "sub-gus"))

    assert "nonce differs" in messages_of(response)
    assert signed_in_user_id(client) is None
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 600}, "has expired"),
        ({"aud": "another-app"}, "issued to another application"),
        ({"iss": "https://evil.example.com"}, "issued by another provider"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer"],
)
def test_token_with_bad_claims_is_refused(
    client: Client, forger: ForgingProvider, claims: dict[str, object], message: str
) -> None:
    forger.claims = claims

    response = sign_in_at_forger(client)

    assert response["Location"] == reverse("accounts:login")
    assert message in messages_of(response)
    assert signed_in_user_id(client) is None
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("key_id", "message"),
    [
        ("published", "signature is not valid"),
        ("unpublished", "not signed with a key the provider publishes"),
    ],
)
def test_token_signed_by_another_key_is_refused(
    client: Client, forger: ForgingProvider, key_id: str, message: str
) -> None:
    forger.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forger.key_id = key_id

    response = sign_in_at_forger(client)

    assert message in messages_of(response)
    assert signed_in_user_id(client) is None


def test_well_formed_forged_flow_signs_in(
    client: Client, forger: ForgingProvider
) -> None:
    response = sign_in_at_forger(client)

    assert response["Location"] == reverse("gallery:photo_list")
    assert User.objects.get().oidc_subject == ForgingProvider.subject


def test_discovery_document_is_fetched_once(
    client: Client, forger: ForgingProvider
) -> None:
    provider_metadata.cache_clear()

    sign_in_at_forger(client)
    client.logout()
    sign_in_at_forger(client)

    assert forger.discovery_requests == 1


def test_discovery_document_naming_another_issuer_is_rejected(
    forging_provider: ForgingProvider,
) -> None:
    port = urlsplit(forging_provider.issuer).port

    with pytest.raises(DiscoveryError, match="names another issuer"):
        provider_metadata(f"http://localhost:{port}")


def test_unreachable_provider_is_explained(
    client: Client, oidc: str, settings: Any
) -> None:
    # Nothing listens on port 9 of loopback, so the connection is refused.
    settings.OIDC_ISSUER = "http://127.0.0.1:9"

    response = client.get(reverse("oidc_authentication_init"))

    assert response["Location"] == reverse("accounts:login")
    assert "cannot be reached" in messages_of(response)


def test_expired_refresh_window_sends_get_to_provider(
    client: Client, oidc: str
) -> None:
    sign_in_to_site_through_provider(client, make_user(oidc_subject="sub-hal"))
    expire_refresh_window(client)

    response = client.get(reverse("gallery:photo_list"))

    assert response.status_code == 302
    assert response["Location"].startswith(f"{oidc}/oauth2/authorize?")
    assert query_of(response["Location"])["prompt"] == "none"


def test_fresh_session_is_not_sent_to_provider(client: Client, oidc: str) -> None:
    sign_in_to_site_through_provider(client, make_user(oidc_subject="sub-ida"))

    response = client.get(reverse("gallery:photo_list"))

    assert response.status_code == 200


def test_local_session_is_not_sent_to_provider(client: Client, oidc: str) -> None:
    client.force_login(make_user())

    response = client.get(reverse("gallery:photo_list"))

    assert response.status_code == 200


def test_provider_ending_session_signs_user_out(client: Client, oidc: str) -> None:
    sign_in_to_site_through_provider(client, make_user(oidc_subject="sub-jo"))
    expire_refresh_window(client)
    state = query_of(client.get(reverse("gallery:photo_list"))["Location"])["state"]

    response = client.get(
        reverse("oidc_authentication_callback"),
        {"error": "login_required", "state": state},
    )

    assert response["Location"] == reverse("accounts:login")
    assert "session has ended" in messages_of(response)
    assert signed_in_user_id(client) is None


def test_user_switched_off_here_loses_session(client: Client, oidc: str) -> None:
    user = make_user(oidc_subject="sub-kim")
    sign_in_to_site_through_provider(client, user)
    User.objects.filter(pk=user.pk).update(is_active=False)

    response = client.get(reverse("gallery:photo_list"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_sign_out_ends_session_at_cognito(
    client: Client, oidc: str, settings: Any
) -> None:
    settings.COGNITO_USER_POOL_ID = "eu-west-1_AbC123"
    settings.COGNITO_DOMAIN = "photos.auth.eu-west-1.amazoncognito.com"
    settings.COGNITO_SIGN_OUT_URL = "https://photos.example.com/accounts/sign-in/"
    sign_in_to_site_through_provider(client, make_user(oidc_subject="sub-lou"))

    response = client.post(reverse("accounts:logout"))

    assert response["Location"] == (
        "https://photos.auth.eu-west-1.amazoncognito.com/logout?client_id=photosite"
        "&logout_uri=https%3A%2F%2Fphotos.example.com%2Faccounts%2Fsign-in%2F"
    )
    assert signed_in_user_id(client) is None


def test_sign_out_uses_discovered_end_session_endpoint(
    client: Client, oidc: str
) -> None:
    sign_in_to_site_through_provider(client, make_user(oidc_subject="sub-mo"))

    response = client.post(reverse("accounts:logout"))

    assert response["Location"].startswith(f"{oidc}/oauth2/end_session?")
    params = query_of(response["Location"])
    assert params["post_logout_redirect_uri"] == "http://testserver/accounts/sign-in/"
    assert signed_in_user_id(client) is None


def test_sign_out_of_local_account_stays_local(client: Client, oidc: str) -> None:
    client.force_login(make_user())

    response = client.post(reverse("accounts:logout"))

    assert response["Location"] == reverse("accounts:login")
    assert signed_in_user_id(client) is None


def test_sign_in_page_offers_cognito_when_configured(client: Client, oidc: str) -> None:
    response = client.get(reverse("accounts:login"), {"next": "/labels/"})

    assert b"Sign in with Cognito" in response.content
    assert b'href="/oidc/authenticate/?next=/labels/"' in response.content


def test_sign_in_page_has_only_local_form_by_default(client: Client, db: None) -> None:
    response = client.get(reverse("accounts:login"))

    assert b"Sign in with Cognito" not in response.content
    assert b'name="password"' in response.content


def test_start_of_sign_in_is_missing_by_default(client: Client, db: None) -> None:
    response = client.get(reverse("oidc_authentication_init"))

    assert response.status_code == 404


def test_local_sign_up_can_be_hidden_in_cognito_mode(
    client: Client, oidc: str, settings: Any
) -> None:
    settings.LOCAL_SIGNUP_ENABLED = False

    page = client.get(reverse("accounts:login"))
    sign_up = client.get(reverse("accounts:sign_up"))

    assert reverse("accounts:sign_up").encode() not in page.content
    assert b"Sign in with Cognito" in page.content
    assert sign_up.status_code == 404


def test_cognito_settings_switch_sign_in_over_without_network() -> None:
    code = (
        "import django; django.setup();"
        "from django.conf import settings as s;"
        "from django.core.wsgi import get_wsgi_application;"
        "get_wsgi_application();"
        "print(s.OIDC_ISSUER, s.AUTHENTICATION_BACKENDS[-1], s.MIDDLEWARE[-1])"
    )

    result = run_site_code(
        code,
        COGNITO_USER_POOL_ID="eu-west-1_AbC123",
        COGNITO_CLIENT_ID="client",
        COGNITO_CLIENT_SECRET="secret",
        # Any attempt to reach a provider would fail through this proxy.
        HTTPS_PROXY="http://127.0.0.1:9",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123",
        COGNITO_BACKEND,
        "accounts.oidc.SessionRefresh",
    ]


def test_cognito_client_without_secret_is_refused_at_start() -> None:
    result = run_site_code(
        "import django; django.setup()",
        COGNITO_USER_POOL_ID="eu-west-1_AbC123",
        COGNITO_CLIENT_ID="client",
    )

    assert result.returncode != 0
    assert "Set COGNITO_CLIENT_SECRET" in result.stderr
