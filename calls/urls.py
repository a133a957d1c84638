from django.urls import path

from calls import views

app_name = "calls"
steps = [
    path("language/", views.language, name="language"),
    path("card/", views.card, name="card"),
    path("pin/", views.pin, name="pin"),
    path("status/", views.status, name="status"),
    path("fallback/", views.fallback, name="fallback"),
]
# Each URL typed into Twilio's console without its trailing slash is served as it is, as /voice
# is (securegather.urls): Django's redirect to the slash would lose Twilio's POST. reverse()
# gives the last of a name, so the URLs the answers name keep their slash.
urlpatterns = [
    *(path(str(step.pattern).removesuffix("/"), step.callback, name=step.name) for step in steps),
    path("", views.incoming, name="incoming"),
    *steps,
]
