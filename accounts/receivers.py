"""Count wrong passwords, and forget them once the right one is given."""

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import User
from accounts.throttling import forget_failures, record_failure

logger = logging.getLogger(__name__)


@receiver(user_login_failed, dispatch_uid="accounts.count_failure")
def count_failure(
    sender: object,
    credentials: dict[str, Any],
    request: HttpRequest | None = None,
    **kwargs: object,
) -> None:
    username = credentials.get("username")
    if isinstance(username, str) and username:
        record_failure(username)
        logger.info("Wrong password for %s", username)


@receiver(user_logged_in, dispatch_uid="accounts.forget_failures")
def forget_failures_on_sign_in(
    sender: object, request: HttpRequest | None, user: User, **kwargs: object
) -> None:
    forget_failures(user.get_username())
