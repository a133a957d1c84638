from django.urls import path

from legacy import views

app_name = "legacy"
urlpatterns = [
    path("decrypt-gather", views.decrypt_gather, name="decrypt-gather"),
]
