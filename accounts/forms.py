from typing import Any

from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.throttling import minutes_paused


class SignUpForm(UserCreationForm[User]):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class SignInForm(AuthenticationForm):
    """The password form, refusing an account that had too many wrong ones."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username:
            minutes = minutes_paused(username)
            if minutes:
                raise ValidationError(
                    "Too many wrong passwords for this account. Try again in "
                    "%(minutes)s minute(s).",
                    code="throttled",
                    params={"minutes": minutes},
                )
        return super().clean()
