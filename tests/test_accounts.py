from django.test import Client
from django.urls import reverse

from accounts.models import User


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
