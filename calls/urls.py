from django.urls import path

from calls import views

app_name = "calls"
urlpatterns = [
    path("", views.incoming, name="incoming"),
    path("language/", views.language, name="language"),
    path("card/", views.card, name="card"),
    path("pin/", views.pin, name="pin"),
    path("status/", views.status, name="status"),
    path("fallback/", views.fallback, name="fallback"),
]
