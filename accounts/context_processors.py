from django.conf import settings
from django.http import HttpRequest


def sign_in_options(request: HttpRequest) -> dict[str, bool]:
    return {
        "local_signup_enabled": settings.LOCAL_SIGNUP_ENABLED,
        "oidc_enabled": settings.OIDC_ENABLED,
    }
