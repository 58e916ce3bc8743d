from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("callback/", views.receive_labels, name="receive_labels"),
]
