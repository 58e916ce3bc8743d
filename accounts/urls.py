from django.contrib.auth import views as auth_views
from django.urls import path
from mozilla_django_oidc.views import OIDCLogoutView

from accounts import views
from accounts.forms import SignInForm

app_name = "accounts"
urlpatterns = [
    path("sign-up/", views.sign_up, name="sign_up"),
    path(
        "sign-in/",
        auth_views.LoginView.as_view(
            authentication_form=SignInForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    # Ends the Django session, then sends people who signed in through
    # Cognito to its logout page (OIDC_OP_LOGOUT_URL_METHOD) and everyone
    # else to LOGOUT_REDIRECT_URL.
    path("sign-out/", OIDCLogoutView.as_view(), name="logout"),
]
