from django.contrib import admin
from django.urls import include, path

from securegather.views import healthz

urlpatterns = [
    path("voice/", include("calls.urls")),
    path("api/", include("legacy.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
