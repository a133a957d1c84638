from django.contrib import admin
from django.urls import include, path

from calls import views as calls_views
from monitoring import views as monitoring_views

urlpatterns = [
    path("voice/", include("calls.urls")),
    # The call's first step without its trailing slash (see calls.urls), in the calls app so
    # that it is spoken in the call's language.
    path(
        "voice",
        include(([path("", calls_views.incoming)], "calls"), namespace="calls-no-slash"),
    ),
    path("api/", include("legacy.urls")),
    path("admin/", admin.site.urls),
    # Prometheus' default metrics_path, without a slash.
    path("metrics", monitoring_views.metrics, name="metrics"),
]

# A refusal in the admin names the permission its page needs, in the admin's frame (desk/views.py).
handler403 = "desk.views.permission_denied"
