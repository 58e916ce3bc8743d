"""Serve the site-wide pages that belong to no single app."""

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)


def health(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.warning("Health check failed: the database does not answer")
        return JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    return JsonResponse({"status": "ok", "database": "up"})


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    # Django answers too many files or fields in one upload with this view.
    return render(request, "400.html", {"reason": str(exception)}, status=400)
