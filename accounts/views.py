"""Let people sign up locally and sign in locally or through Cognito."""

import logging

import requests
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from accounts.backends import SignInRefused
from accounts.forms import SignUpForm
from accounts.oidc import DiscoveredSettings

logger = logging.getLogger(__name__)

# What the provider's error codes on the callback mean to the person.
PROVIDER_ERRORS = {
    "login_required": "Your Cognito session has ended. Please sign in again.",
    "interaction_required": "Your Cognito session has ended. Please sign in again.",
    "consent_required": "Your Cognito session has ended. Please sign in again.",
    "access_denied": "Sign-in was cancelled at Cognito.",
}


def sign_up(request: HttpRequest) -> HttpResponse:
    if not settings.LOCAL_SIGNUP_ENABLED:
        raise Http404("Local sign-up is switched off.")
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)

    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(settings.LOGIN_REDIRECT_URL)
    status = 400 if form.errors else 200
    return render(request, "accounts/sign_up.html", {"form": form}, status=status)


class StartSignInView(
    DiscoveredSettings,
    OIDCAuthenticationRequestView,  # type: ignore[misc]
):
    """Send the browser to the provider's sign-in page."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Sign-in with Cognito is not configured.")
        try:
            response: HttpResponse = super().get(request)
        except requests.RequestException:
            logger.warning("Could not reach the sign-in provider", exc_info=True)
            messages.error(request, "Cognito cannot be reached. Please try again soon.")
            return redirect(settings.LOGIN_URL)
        return response


class SignInCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """Finish a sign-in at the provider, or refuse it and say why."""

    failure_reason = "Sign-in with Cognito did not complete. Please try again."

    @property
    def failure_url(self) -> str:
        return resolve_url(settings.LOGIN_REDIRECT_URL_FAILURE)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not started_here(request):
            # Anyone can send a browser here with a made-up state, so this
            # leaves the browser's session as it was.
            return self.turn_away(
                "This sign-in answer does not match a sign-in started here"
                " (its state is unknown). Please sign in again."
            )
        if "error" in request.GET:
            self.failure_reason = PROVIDER_ERRORS.get(
                request.GET["error"], "Cognito refused the sign-in."
            )
        try:
            response: HttpResponse = super().get(request)
        except SignInRefused as refusal:
            self.failure_reason = str(refusal)
        except requests.RequestException:
            logger.warning("The provider failed to finish a sign-in", exc_info=True)
            self.failure_reason = "Cognito could not finish the sign-in. Try again."
        else:
            return response
        return self.login_failure()

    def login_failure(self) -> HttpResponse:
        logger.warning("Refused a sign-in: %s", self.failure_reason)
        # A failed re-check must end the session too; otherwise the session
        # refresh would send the browser straight back to the provider.
        if self.request.user.is_authenticated:
            auth.logout(self.request)
        return self.turn_away(self.failure_reason)

    def turn_away(self, reason: str) -> HttpResponse:
        messages.error(self.request, reason)
        return HttpResponseRedirect(self.failure_url)


def started_here(request: HttpRequest) -> bool:
    """Tell whether the callback's state belongs to a sign-in of this session."""
    return request.GET.get("state") in request.session.get("oidc_states", {})
