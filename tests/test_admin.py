import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from labeling import services
from labeling.labelers import DetectedLabel
from labeling.models import PhotoLabel
from tests.factories import make_photo


@pytest.fixture
def staff(client: Client, db: None) -> User:
    person = User.objects.create_superuser(
        "boss", "boss@example.com", "a-long-password"
    )
    client.force_login(person)
    return person


def labelled_photo() -> object:
    photo = make_photo()
    services.apply_labels(
        photo, "local", "1", [DetectedLabel("Cat", 95.0), DetectedLabel("Dog", 40.0)]
    )
    return photo


@pytest.mark.parametrize(
    ("action", "state"), [("accept_labels", "accepted"), ("reject_labels", "rejected")]
)
def test_bulk_review_actions(
    client: Client, staff: User, action: str, state: str
) -> None:
    photo = labelled_photo()
    ids = list(photo.labels.values_list("pk", flat=True))

    client.post(
        reverse("admin:labeling_photolabel_changelist"),
        {"action": action, "_selected_action": ids},
    )

    assert set(PhotoLabel.objects.values_list("review_state", flat=True)) == {state}
    assert set(PhotoLabel.objects.values_list("reviewed_by", flat=True)) == {staff.pk}


def test_confidence_filter(client: Client, staff: User) -> None:
    labelled_photo()

    response = client.get(
        reverse("admin:labeling_photolabel_changelist"), {"confidence": "high"}
    )

    assert [pl.label.name for pl in response.context["cl"].result_list] == ["Cat"]


def unchanged_inline(formset: object, photo_id: int) -> dict[str, str]:
    """Post back a read-only inline such as the timeline as it was shown."""
    prefix = formset.prefix  # type: ignore[attr-defined]
    count = str(formset.initial_form_count())  # type: ignore[attr-defined]
    data = {f"{prefix}-TOTAL_FORMS": count, f"{prefix}-INITIAL_FORMS": count}
    for index, form in enumerate(formset.forms):  # type: ignore[attr-defined]
        data[f"{prefix}-{index}-id"] = str(form.instance.pk)
        data[f"{prefix}-{index}-photo"] = str(photo_id)
    return data


def test_staff_added_label_is_recorded_as_human(client: Client, staff: User) -> None:
    photo = labelled_photo()
    url = reverse("admin:gallery_photo_change", args=[photo.pk])
    labels, *others = client.get(url).context["inline_admin_formsets"]
    formset = labels.formset
    data = {
        "description": photo.description,
        "status": photo.status,
        "failure_reason": "",
        "labels-TOTAL_FORMS": str(formset.total_form_count()),
        "labels-INITIAL_FORMS": str(formset.initial_form_count()),
    }
    for other in others:
        data.update(unchanged_inline(other.formset, photo.pk))
    for index, form in enumerate(formset.forms):
        prefix = f"labels-{index}-"
        if form.instance.pk:
            data[prefix + "id"] = str(form.instance.pk)
            data[prefix + "label"] = str(form.instance.label_id)
            data[prefix + "confidence"] = str(form.instance.confidence)
            data[prefix + "review_state"] = form.instance.review_state
            data[prefix + "photo"] = str(photo.pk)
    new = f"labels-{formset.initial_form_count()}-"
    tiger = services.ensure_labels([DetectedLabel("Tiger", 100.0)])["Tiger"]
    data.update(
        {
            new + "label": str(tiger),
            new + "confidence": "100",
            new + "review_state": "automatic",
            new + "photo": str(photo.pk),
        }
    )

    response = client.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    added = photo.labels.get(label__name="Tiger")
    assert added.source == "human"
    assert added.review_state == "accepted"
    assert added.reviewed_by == staff
    assert photo.labels.get(label__name="Cat").source == "local"


def test_label_list_counts_photos(client: Client, staff: User) -> None:
    labelled_photo()
    labelled_photo()

    response = client.get(reverse("admin:labeling_label_changelist"))

    counts = {
        label.name: label.photo_total for label in response.context["cl"].result_list
    }
    assert counts == {"Cat": 2, "Dog": 2}


def test_photo_admin_shows_thumbnail(client: Client, staff: User) -> None:
    photo = labelled_photo()

    response = client.get(reverse("admin:gallery_photo_changelist"))

    assert (
        reverse("gallery:photo_file", args=[photo.pk, "thumbnail"]).encode()
        in response.content
    )
