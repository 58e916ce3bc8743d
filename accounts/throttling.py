"""Slow down password guessing: too many wrong passwords pause an account."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import SignInFailure


def record_failure(username: str) -> None:
    """Count one wrong password, forgetting those too old to count."""
    now = timezone.now()
    SignInFailure.objects.filter(at__lt=now - window()).delete()
    SignInFailure.objects.create(username=counted_name(username), at=now)


def forget_failures(username: str) -> None:
    SignInFailure.objects.filter(username=counted_name(username)).delete()


def minutes_paused(username: str) -> int:
    """Return how many more minutes sign-in is refused for username, or 0."""
    limit = settings.SIGN_IN_MAX_FAILURES
    recent = SignInFailure.objects.filter(
        username=counted_name(username), at__gte=timezone.now() - window()
    )
    failures = list(recent.order_by("-at").values_list("at", flat=True)[:limit])
    if len(failures) < limit:
        return 0
    # Paused until the oldest failure that still counts leaves the window.
    remaining = failures[-1] + window() - timezone.now()
    return max(1, -(-int(remaining.total_seconds()) // 60))


def counted_name(username: str) -> str:
    """Count "Cy" and "cy" as one account, as people type them."""
    return username.lower()[:150]


def window() -> timedelta:
    return timedelta(minutes=settings.SIGN_IN_FAILURE_WINDOW_MINUTES)
