"""Show a person their photos and let them upload, describe and delete."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import FileSystemStorage
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from gallery import services
from gallery.forms import DescriptionForm, SearchForm, UploadForm
from gallery.models import Photo
from gallery.storage import VARIANTS, photo_file_url


class SignedInRequest(HttpRequest):
    """A request behind login_required, whose user is never anonymous."""

    user: User


def get_own_photo(request: SignedInRequest, pk: int) -> Photo:
    # Another person's photo is answered exactly like a missing one.
    return get_object_or_404(Photo, pk=pk, owner=request.user)


@login_required
@require_GET
def photo_list(request: SignedInRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    photos = Photo.objects.filter(owner=request.user)
    if form.is_valid():
        photos = services.search_photos(
            photos, form.cleaned_data["q"], form.cleaned_data["label"]
        )
    paginator = Paginator(
        services.with_visible_labels(photos), settings.PHOTOS_PER_PAGE
    )
    page = paginator.get_page(request.GET.get("page"))
    context = {"page": page, "form": form, "searching": any(form.data.values())}
    return render(request, "gallery/photo_list.html", context)


@login_required
@require_GET
def photo_status(request: SignedInRequest) -> JsonResponse:
    ids = [int(value) for value in request.GET.getlist("id") if value.isdigit()][:100]
    photos = services.with_visible_labels(
        Photo.objects.filter(owner=request.user, pk__in=ids)
    )
    return JsonResponse({"photos": [photo_summary(photo) for photo in photos]})


def photo_summary(photo: Photo) -> dict[str, object]:
    return {
        "id": photo.pk,
        "status": photo.status,
        "status_display": photo.get_status_display(),
        "failure_reason": photo.failure_reason,
        "thumbnail_url": photo_file_url(photo, "thumbnail"),
        "labels": [
            {
                "name": photo_label.label.name,
                "confidence": round(photo_label.confidence, 1),
                "boxes": photo_label.boxes,
            }
            for photo_label in photo.visible_labels  # type: ignore[attr-defined]
        ],
    }


@login_required
@require_GET
def photo_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    photos = services.with_visible_labels(Photo.objects.filter(owner=request.user))
    photo = get_object_or_404(photos.prefetch_related("events"), pk=pk)
    context = {
        "photo": photo,
        "summary": photo_summary(photo),
        "form": DescriptionForm(instance=photo),
    }
    return render(request, "gallery/photo_detail.html", context)


@login_required
@require_POST
def edit_photo(request: SignedInRequest, pk: int) -> HttpResponse:
    photo = get_own_photo(request, pk)
    form = DescriptionForm(request.POST, instance=photo)
    if not form.is_valid():
        messages.error(request, "The description is too long.")
        return redirect("gallery:photo_detail", pk=photo.pk)
    services.update_description(photo, form.cleaned_data["description"])
    messages.success(request, "Description saved.")
    return redirect("gallery:photo_detail", pk=photo.pk)


@login_required
@require_POST
def delete_photo(request: SignedInRequest, pk: int) -> HttpResponse:
    photo = get_own_photo(request, pk)
    services.delete_photo(photo)
    messages.success(request, f"Deleted {photo.original_name}.")
    return redirect("gallery:photo_list")


@login_required
@require_GET
def photo_file(
    request: SignedInRequest, pk: int, variant: str
) -> HttpResponse | FileResponse:
    if variant not in VARIANTS:
        raise Http404("No such file.")
    owners = {} if request.user.is_staff else {"owner": request.user}
    photo = get_object_or_404(Photo, pk=pk, **owners)
    if variant != "original":
        services.ensure_thumbnail(photo, variant)
    field = getattr(photo, variant)
    if not isinstance(field.storage, FileSystemStorage):
        return redirect(field.storage.url(field.name))
    content_type = photo.content_type if variant == "original" else "image/jpeg"
    response = FileResponse(field.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@dataclass
class UploadResult:
    name: str
    photo: Photo | None = None
    error: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "stored": not self.error,
            "error": self.error,
            "photo_id": self.photo.pk if self.photo else None,
            "url": reverse("gallery:photo_detail", args=[self.photo.pk])
            if self.photo
            else None,
        }


@login_required
@require_http_methods(["GET", "POST"])
def upload_photos(request: SignedInRequest) -> HttpResponse:
    if request.method == "GET":
        context = {"form": UploadForm(), "max_mb": settings.PHOTO_MAX_BYTES // 2**20}
        return render(request, "gallery/upload.html", context)

    uploads = request.FILES.getlist("photos")
    oversized = getattr(request, "oversized_uploads", [])
    form = UploadForm(request.POST, files_sent=len(uploads) + len(oversized))
    if form.is_valid() and not uploads and not oversized:
        form.add_error("photos", "Choose at least one photo to upload.")
    if not form.is_valid():
        return upload_response(request, form, [], status=400)

    results = [
        UploadResult(name, error=services.too_large_message()) for name in oversized
    ]
    for upload in uploads:
        results.append(store_one(request, upload, form.cleaned_data["description"]))
    failed = any(result.error for result in results)
    return upload_response(request, form, results, status=400 if failed else 201)


def store_one(
    request: SignedInRequest, upload: object, description: str
) -> UploadResult:
    name = getattr(upload, "name", "") or "photo"
    try:
        photo = services.store_photo(request.user, upload, description)  # type: ignore[arg-type]
    except services.DuplicatePhoto as error:
        return UploadResult(name, photo=error.photo, error=str(error))
    except services.PhotoRejected as error:
        return UploadResult(name, error=str(error))
    return UploadResult(name, photo=photo)


def upload_response(
    request: SignedInRequest, form: UploadForm, results: list[UploadResult], status: int
) -> HttpResponse:
    if "application/json" in request.headers.get("Accept", ""):
        errors = [str(error) for error in form.non_field_errors()]
        errors += [str(error) for error in form.errors.get("photos", [])]
        body = {"results": [result.as_json() for result in results], "errors": errors}
        return JsonResponse(body, status=status)
    if status == 201:
        messages.success(request, f"Uploaded {len(results)} photo(s).")
        return redirect("gallery:photo_list")
    context = {
        "form": form,
        "results": results,
        "max_mb": settings.PHOTO_MAX_BYTES // 2**20,
    }
    return render(request, "gallery/upload.html", context, status=status)
