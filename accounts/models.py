"""Store the people who use photosite."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person with photos; signs in locally or through Cognito."""

    email = models.EmailField("email address", blank=True)
    # The provider's lasting id for this person (the token's "sub"); empty
    # for local accounts. Cognito sign-in matches on it, never on the email.
    oidc_subject = models.CharField(
        "Cognito subject",
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        editable=False,
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class SignInFailure(models.Model):
    """A wrong password given for a username, kept while it counts."""

    username = models.CharField(max_length=150, db_index=True)
    at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.username} at {self.at:%Y-%m-%d %H:%M:%S}"
