"""Let people sign up, sign in and sign out with local accounts."""

from django.conf import settings
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.forms import SignUpForm


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
