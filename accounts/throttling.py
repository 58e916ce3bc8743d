"""Slow down password guessing: too many wrong passwords pause an account."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import SignInFailure


def record_failure(username: str) -> None:
    """Count one wrong password, forgetting those too old to count."""
    now = timezone.now()
    SignInFailure.objects.filter(at__lt=now - window()).delete()
    SignInFailure.objects.create(username=username.lower()[:150], at=now)


def forget_failures(username: str) -> None:
    SignInFailure.objects.filter(username=username.lower()[:150]).delete()


def minutes_paused(username: str) -> int:
    """Return how many more minutes sign-in is refused for username, or 0."""
    since = timezone.now() - window()
    recent = SignInFailure.objects.filter(
        username=username.lower()[:150], at__gte=since
    )
    failures = list(recent.order_by("-at").values_list("at", flat=True))
    if len(failures) < settings.SIGN_IN_MAX_FAILURES:
        return 0
    # Paused until the oldest failure that still counts leaves the window.
    oldest_counted = failures[settings.SIGN_IN_MAX_FAILURES - 1]
    remaining = oldest_counted + window() - timezone.now()
    return max(1, -(-int(remaining.total_seconds()) // 60))


def window() -> timedelta:
    return timedelta(minutes=settings.SIGN_IN_FAILURE_WINDOW_MINUTES)
