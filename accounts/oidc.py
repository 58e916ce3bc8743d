"""Find the sign-in provider's endpoints and end its sessions."""

import functools
import logging
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.utils.functional import lazy
from django.utils.module_loading import import_string
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.middleware import SessionRefresh as LibrarySessionRefresh
from mozilla_django_oidc.utils import import_from_settings

logger = logging.getLogger(__name__)

# The mozilla-django-oidc settings answered from the discovery document.
DISCOVERED_SETTINGS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


class DiscoveryError(requests.RequestException):
    """The provider's discovery document cannot be used."""


@functools.cache
def provider_metadata(issuer: str) -> dict[str, Any]:
    """Fetch and check the issuer's discovery document, once per process."""
    response = requests.get(
        f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT
    )
    response.raise_for_status()
    metadata = response.json()
    # OpenID Connect Discovery 1.0, section 4.3: a document naming another
    # issuer must not be used, or tokens from that issuer would be accepted.
    if not isinstance(metadata, dict) or metadata.get("issuer") != issuer:
        raise DiscoveryError(f"The discovery document at {issuer} names another issuer")
    logger.info("Read the discovery document of %s", issuer)
    return metadata


def discovered(name: str) -> str:
    """Return one URL from the configured provider's discovery document."""
    value = provider_metadata(settings.OIDC_ISSUER).get(name)
    if not isinstance(value, str):
        raise DiscoveryError(f"The discovery document has no {name}")
    return value


discovered_lazy = lazy(discovered, str)


class DiscoveredSettings:
    """Give mozilla-django-oidc the endpoints from the discovery document."""

    @staticmethod
    def get_settings(attr: str, *args: Any) -> Any:
        if attr in DISCOVERED_SETTINGS:
            # Lazy, because the library reads these when it builds its views
            # and middleware; the document is fetched when a URL is used, so
            # the site starts even while the provider is out of reach.
            return discovered_lazy(DISCOVERED_SETTINGS[attr])
        return import_from_settings(attr, *args)


class SessionRefresh(DiscoveredSettings, LibrarySessionRefresh):  # type: ignore[misc]
    """Send people to the provider now and then to re-check their session."""


def signed_in_with_provider(request: HttpRequest) -> bool:
    backend_path = request.session.get(BACKEND_SESSION_KEY)
    if not backend_path:
        return False
    return issubclass(import_string(backend_path), OIDCAuthenticationBackend)


def provider_logout_url(request: HttpRequest) -> str:
    """Return where signing out sends the browser after the local sign-out.

    People who signed in through the provider go to its logout page, which
    ends their session there too and sends them back to the sign-out URL.
    """
    local_url = resolve_url(settings.LOGOUT_REDIRECT_URL)
    if not signed_in_with_provider(request):
        return local_url
    return_url = settings.COGNITO_SIGN_OUT_URL or request.build_absolute_uri(local_url)
    try:
        endpoint = logout_endpoint()
    except requests.RequestException:
        logger.warning(
            "No provider logout endpoint; signing out here only", exc_info=True
        )
        return local_url
    # Cognito's /logout takes its own parameter names rather than those of
    # OpenID Connect RP-Initiated Logout.
    return_parameter = (
        "logout_uri" if settings.COGNITO_USER_POOL_ID else "post_logout_redirect_uri"
    )
    query = urlencode(
        {"client_id": settings.OIDC_RP_CLIENT_ID, return_parameter: return_url}
    )
    return f"{endpoint}?{query}"


def logout_endpoint() -> str:
    if settings.COGNITO_DOMAIN:
        return f"https://{settings.COGNITO_DOMAIN}/logout"
    return discovered("end_session_endpoint")
