from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    readonly_fields = ("oidc_subject",)
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Cognito", {"fields": ("oidc_subject",)}),
    )
