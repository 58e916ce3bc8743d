"""Sign people in with the tokens of Cognito or another OpenID provider."""

import logging
import re
from typing import Any

import jwt
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.models import User
from accounts.oidc import DiscoveredSettings

logger = logging.getLogger(__name__)

# Seconds of clock difference allowed between this site and the provider.
CLOCK_SKEW_SECONDS = 30
USERNAME_CLAIMS = ("cognito:username", "preferred_username", "email")
TOKEN_PROBLEMS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "The sign-in token has expired."),
    (jwt.InvalidAudienceError, "The sign-in token was issued to another application."),
    (jwt.InvalidIssuerError, "The sign-in token was issued by another provider."),
    (jwt.InvalidSignatureError, "The sign-in token's signature is not valid."),
    (jwt.ImmatureSignatureError, "The sign-in token is not valid yet."),
    (jwt.MissingRequiredClaimError, "The sign-in token lacks a required claim."),
]


class SignInRefused(Exception):
    """A sign-in was stopped for a reason the person should be told."""


class CognitoBackend(
    DiscoveredSettings,
    OIDCAuthenticationBackend,  # type: ignore[misc]
):
    """Check every claim of the id token and match people by its subject."""

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = self.get_payload_data(token, self.signing_key(token))
        nonce = kwargs.get("nonce")
        if self.get_settings("OIDC_USE_NONCE", True) and payload.get("nonce") != nonce:
            raise SignInRefused(
                "The sign-in token does not answer this site's request (its nonce"
                " differs), so it may have been replayed."
            )
        return payload

    def signing_key(self, token: str) -> jwt.PyJWK:
        try:
            key: jwt.PyJWK = self.retrieve_matching_jwk(token)
        except (SuspiciousOperation, KeyError, jwt.PyJWTError) as error:
            raise SignInRefused(
                "The sign-in token was not signed with a key the provider publishes."
            ) from error
        return key

    def get_payload_data(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        # The library leaves the audience unchecked and accepts unsigned
        # tokens when told to; this checks everything and never does that.
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise SignInRefused(describe_token_problem(error)) from error
        return payload

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> User:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload["sub"]:
            raise SignInRefused("The provider described someone other than the token.")
        claims = {**payload, **userinfo}
        user = User.objects.filter(oidc_subject=payload["sub"]).first()
        if user is None:
            return create_user_from_claims(claims)
        if not user.is_active:
            raise SignInRefused("This account has been switched off on photosite.")
        return self.update_user(user, claims)

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        email = claims.get("email")
        if isinstance(email, str) and email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        return user

    def get_user(self, user_id: int) -> User | None:
        user: User | None = super().get_user(user_id)
        # Unlike ModelBackend's, the library's lookup ignores is_active, so
        # an account switched off here would otherwise keep its sessions.
        if user is None or not user.is_active:
            return None
        return user


def describe_token_problem(error: jwt.PyJWTError) -> str:
    for kind, description in TOKEN_PROBLEMS:
        if isinstance(error, kind):
            return description
    return "The sign-in token could not be read."


def create_user_from_claims(claims: dict[str, Any]) -> User:
    """Create the account for someone signing in through the provider."""
    email = claims.get("email") or ""
    if (
        email
        and User.objects.filter(email__iexact=email, oidc_subject__isnull=True).exists()
    ):
        # Linking on the email alone would hand a local account to whoever
        # controls that address at the provider.
        raise SignInRefused(
            "A photosite account with your email address already exists. Sign in"
            " with its password; it has not been linked to your Cognito account."
        )
    username = unique_username(wanted_username(claims))
    user = User.objects.create_user(username, email=email, oidc_subject=claims["sub"])
    logger.info("Created user %s for provider subject %s", user.pk, claims["sub"])
    return user


def wanted_username(claims: dict[str, Any]) -> str:
    for name in USERNAME_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return str(claims["sub"])


def unique_username(wanted: str) -> str:
    """Return a valid username close to the wanted one that nobody has yet."""
    # Django's username validator allows letters, digits and @.+-_ only.
    base = re.sub(r"[^\w.@+-]", "", wanted)[:140] or "user"
    username, number = base, 1
    while User.objects.filter(username__iexact=username).exists():
        number += 1
        username = f"{base}-{number}"
    return username
