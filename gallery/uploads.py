"""Stop reading an uploaded file as soon as it passes the size limit."""

import logging

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

logger = logging.getLogger(__name__)


class SizeLimitedUploadHandler(FileUploadHandler):
    """Skip files over PHOTO_MAX_BYTES before they reach memory or disk.

    It runs ahead of Django's own handlers; a skipped file's remaining bytes
    are read and discarded, and its name is kept on the request so the view
    can say why it is missing.
    """

    def new_file(self, *args: object, **kwargs: object) -> None:
        super().new_file(*args, **kwargs)  # type: ignore[arg-type]
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.PHOTO_MAX_BYTES:
            oversized = getattr(self.request, "oversized_uploads", [])
            oversized.append(self.file_name)
            self.request.oversized_uploads = oversized  # type: ignore[union-attr]
            logger.info("Upload skipped: over the size limit")
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
