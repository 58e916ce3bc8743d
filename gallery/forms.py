from django import forms
from django.conf import settings

from gallery.models import Photo


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class UploadForm(forms.Form):
    photos = forms.FileField(
        widget=MultipleFileInput(attrs={"accept": "image/*", "multiple": True}),
        required=False,
    )
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: object, files_sent: int = 0, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.files_sent = files_sent

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        limit = settings.PHOTO_MAX_FILES_PER_UPLOAD
        if self.files_sent > limit:
            raise forms.ValidationError(
                f"You can upload at most {limit} photos at once; "
                f"this upload had {self.files_sent}."
            )
        return cleaned


class DescriptionForm(forms.ModelForm[Photo]):
    class Meta:
        model = Photo
        fields = ["description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class SearchForm(forms.Form):
    q = forms.CharField(max_length=100, required=False, label="Search")
    label = forms.CharField(max_length=100, required=False)
