from datetime import timedelta
from typing import Any

from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import SignInFailure, User


def test_sign_up_creates_account_and_signs_in(client: Client, db: None) -> None:
    response = client.post(
        reverse("accounts:sign_up"),
        {
            "username": "ada",
            "email": "ada@example.com",
            "password1": "analytical-engine-1843",
            "password2": "analytical-engine-1843",
        },
    )

    assert response.status_code == 302
    assert User.objects.get().username == "ada"
    assert client.get(reverse("gallery:photo_list")).status_code == 200


def test_sign_up_applies_password_validation(client: Client, db: None) -> None:
    response = client.post(
        reverse("accounts:sign_up"),
        {"username": "bob", "password1": "password", "password2": "password"},
    )

    assert response.status_code == 400
    assert b"This password is too common" in response.content
    assert not User.objects.exists()


def test_sign_in_and_sign_out(client: Client, db: None) -> None:
    User.objects.create_user("cy", password="a-long-test-password")

    signed_in = client.post(
        reverse("accounts:login"),
        {"username": "cy", "password": "a-long-test-password"},
    )
    signed_out = client.post(reverse("accounts:logout"))

    assert signed_in.status_code == 302
    assert signed_out.status_code == 302
    assert client.get(reverse("gallery:photo_list")).status_code == 302


def test_sign_up_can_be_switched_off(
    client: Client, db: None, settings: object
) -> None:
    settings.LOCAL_SIGNUP_ENABLED = False  # type: ignore[attr-defined]

    response = client.get(reverse("accounts:sign_up"))

    assert response.status_code == 404


def sign_in(client: Client, username: str, password: str) -> HttpResponse:
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password}
    )


def test_too_many_wrong_passwords_pause_the_account(
    client: Client, db: None, settings: Any
) -> None:
    settings.SIGN_IN_MAX_FAILURES = 3
    User.objects.create_user("cy", password="a-long-test-password")
    for _ in range(3):
        assert sign_in(client, "cy", "a-wrong-guess").status_code == 200

    response = sign_in(client, "cy", "a-long-test-password")

    assert response.status_code == 200
    assert b"Too many wrong passwords for this account" in response.content
    assert b"Try again in 15 minute(s)" in response.content
    assert "_auth_user_id" not in client.session


def test_paused_account_signs_in_once_the_failures_are_old(
    client: Client, db: None, settings: Any
) -> None:
    settings.SIGN_IN_MAX_FAILURES = 3
    User.objects.create_user("cy", password="a-long-test-password")
    for _ in range(3):
        sign_in(client, "cy", "a-wrong-guess")
    SignInFailure.objects.update(at=timezone.now() - timedelta(minutes=16))

    response = sign_in(client, "cy", "a-long-test-password")

    assert response.status_code == 302
    assert not SignInFailure.objects.exists()


def test_failures_below_the_limit_are_forgotten_on_sign_in(
    client: Client, db: None, settings: Any
) -> None:
    settings.SIGN_IN_MAX_FAILURES = 3
    User.objects.create_user("cy", password="a-long-test-password")
    User.objects.create_user("di", password="a-long-test-password")
    for _ in range(2):
        sign_in(client, "cy", "a-wrong-guess")
        sign_in(client, "di", "a-wrong-guess")

    assert sign_in(client, "cy", "a-long-test-password").status_code == 302

    assert set(SignInFailure.objects.values_list("username", flat=True)) == {"di"}


def test_unknown_usernames_are_paused_the_same_way(
    client: Client, db: None, settings: Any
) -> None:
    settings.SIGN_IN_MAX_FAILURES = 2
    for _ in range(2):
        sign_in(client, "nobody", "a-wrong-guess")

    response = sign_in(client, "Nobody", "a-wrong-guess")

    assert b"Too many wrong passwords for this account" in response.content
