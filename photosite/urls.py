"""Route photosite's URLs to the apps that serve them."""

from django.contrib import admin
from django.urls import include, path

from photosite import views

urlpatterns = [
    path("", include("gallery.urls")),
    path("accounts/", include("accounts.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("labels/", include("labeling.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.health, name="health"),
]

handler400 = "photosite.views.bad_request"
