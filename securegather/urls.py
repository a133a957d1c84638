from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("voice/", include("calls.urls")),
    path("api/", include("legacy.urls")),
    path("admin/", admin.site.urls),
]
