from django.urls import path

from gallery import views

app_name = "gallery"
urlpatterns = [
    path("", views.photo_list, name="photo_list"),
    path("upload/", views.upload_photos, name="upload_photos"),
    path("photos/status/", views.photo_status, name="photo_status"),
    path("photos/<int:pk>/", views.photo_detail, name="photo_detail"),
    path("photos/<int:pk>/edit/", views.edit_photo, name="edit_photo"),
    path("photos/<int:pk>/delete/", views.delete_photo, name="delete_photo"),
    path("photos/<int:pk>/file/<str:variant>/", views.photo_file, name="photo_file"),
]
