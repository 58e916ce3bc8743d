"""Sign in, re-check and sign out against the npm oidc-provider, as a browser.

The site runs in a server thread and the provider in a Node process; the
test drives both over HTTP with one requests session as the browser. CI
installs the provider first: npm ci --prefix tests/oidc_provider
"""

import html
import os
import re
import subprocess
import time
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.db import connections
from django.test.testcases import LiveServerThread

from accounts.models import User
from tests.test_oidc import CLIENT_ID, CLIENT_SECRET, use_provider

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"

pytestmark = pytest.mark.skipif(
    not (PROVIDER_DIR / "node_modules").is_dir(),
    reason="tests/oidc_provider/node_modules is missing; run "
    "`npm ci --prefix tests/oidc_provider` to install the OIDC provider",
)


@pytest.fixture
def site(settings: Any, transactional_db: None) -> Iterator[str]:
    """Serve the site, its middleware built with the provider settings."""
    use_provider(settings, issuer="")
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    shared = {
        connection.alias: connection
        for connection in connections.all()
        if connection.vendor == "sqlite" and connection.is_in_memory_db()
    }
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, shared, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    yield f"http://127.0.0.1:{server.port}"
    server.terminate()
    server.join()


@pytest.fixture
def provider(site: str, settings: Any, tmp_path: Path) -> Iterator[str]:
    """Start oidc-provider with the site as its client; yield its issuer."""
    environment = {
        **os.environ,
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URI": f"{site}/oidc/callback/",
        "SIGN_OUT_URI": f"{site}/accounts/sign-in/",
    }
    log_path = tmp_path / "provider.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["node", "server.mjs"],
            cwd=PROVIDER_DIR,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    if not first_line.startswith("issuer "):
        process.kill()
        pytest.fail(f"oidc-provider did not start:\n{log_path.read_text()}")
    settings.OIDC_ISSUER = first_line.split()[1]
    yield settings.OIDC_ISSUER
    process.terminate()
    process.wait(10)


def submit_form(
    browser: requests.Session,
    page: requests.Response,
    action: str = "",
    **fields: str,
) -> requests.Response:
    """Submit the page's form whose action ends with action, as a browser."""
    forms = re.findall(
        r'<form\b[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>', page.text, re.S
    )
    target, body = next(
        (html.unescape(target), body)
        for target, body in forms
        if html.unescape(target).endswith(action)
    )
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body)
    data = {name: html.unescape(value) for name, value in hidden} | fields
    return browser.post(urljoin(page.url, target), data=data, timeout=10)


def sign_in(browser: requests.Session, site: str, login: str) -> requests.Response:
    """Press "Sign in with Cognito", sign in at the provider and consent."""
    login_page = browser.get(f"{site}/oidc/authenticate/", timeout=10)
    consent_page = submit_form(browser, login_page, login=login, password="any")
    return submit_form(browser, consent_page)


def expire_refresh_window(browser: requests.Session) -> None:
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    session = store(session_key=browser.cookies["sessionid"])
    session["oidc_id_token_expiration"] = time.time() - 1
    session.save()


def test_sign_in_through_provider_creates_account(site: str, provider: str) -> None:
    browser = requests.Session()

    page = sign_in(browser, site, "nora")

    assert page.url == f"{site}/"
    assert '<span class="who">nora</span>' in page.text
    user = User.objects.get()
    assert (user.username, user.email, user.oidc_subject) == (
        "nora",
        "nora@example.org",
        "nora",
    )


def test_session_recheck_passes_until_provider_disables_account(
    site: str, provider: str
) -> None:
    browser = requests.Session()
    sign_in(browser, site, "omar")
    expire_refresh_window(browser)

    rechecked = browser.get(f"{site}/", timeout=10)
    requests.post(f"{provider}/test/accounts/omar/disable", timeout=10)
    expire_refresh_window(browser)
    refused = browser.get(f"{site}/", timeout=10)

    assert any(
        step.url.startswith(f"{provider}/auth?") and "prompt=none" in step.url
        for step in rechecked.history
    )
    assert rechecked.url == f"{site}/"
    assert '<span class="who">omar</span>' in rechecked.text
    assert refused.url == f"{site}/accounts/sign-in/"
    assert "Your Cognito session has ended" in refused.text
    assert browser.get(f"{site}/", timeout=10).url.startswith(
        f"{site}/accounts/sign-in/"
    )


def test_sign_out_ends_site_and_provider_sessions(site: str, provider: str) -> None:
    browser = requests.Session()
    home = sign_in(browser, site, "pia")

    confirm_page = submit_form(browser, home, "/accounts/sign-out/")
    signed_out = submit_form(browser, confirm_page, logout="yes")

    assert confirm_page.url.startswith(f"{provider}/session/end?")
    assert signed_out.url == f"{site}/accounts/sign-in/"
    assert browser.get(f"{site}/", timeout=10).url.startswith(
        f"{site}/accounts/sign-in/"
    )
    next_sign_in = browser.get(f"{site}/oidc/authenticate/", timeout=10)
    assert next_sign_in.url.startswith(f"{provider}/interaction/")
    assert 'name="password"' in next_sign_in.text
