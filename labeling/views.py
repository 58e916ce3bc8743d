"""Receive the labels the labelling Lambda posts back for each new photo."""

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from labeling import callbacks

logger = logging.getLogger(__name__)


# The caller is the Lambda, not a browser: the signature stands in for CSRF.
@csrf_exempt
@require_POST
def receive_labels(request: HttpRequest) -> JsonResponse:
    """Apply the signed labels in the body, or keep them for a later photo."""
    try:
        outcome = callbacks.receive_labels(
            request.body,
            timestamp=request.headers.get("X-Photosite-Timestamp", ""),
            signature=request.headers.get("X-Photosite-Signature", ""),
        )
    except RequestDataTooBig:
        logger.warning("Label callback refused: the body is too large")
        return JsonResponse({"error": "The body is too large."}, status=400)
    except callbacks.CallbackRefused as error:
        logger.warning("Label callback refused (%s): %s", error.status_code, error)
        return JsonResponse({"error": str(error)}, status=error.status_code)

    status = 200 if outcome is callbacks.Outcome.APPLIED else 202
    return JsonResponse({"status": outcome.value}, status=status)
