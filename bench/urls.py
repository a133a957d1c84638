"""The project's routes plus /bench/baseline/: the cheapest Django view that answers a Gather.

It has no signature check and touches no database: what the framework alone costs per request, to
hold the secured steps against.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from twilio.twiml.voice_response import VoiceResponse

_response = VoiceResponse()
_response.gather(input="dtmf", num_digits=4, timeout=10, method="POST", action="/voice/card/").say(
    "Please enter last 4 digits of your payment card number."
)
BASELINE_TWIML = str(_response)


@csrf_exempt
def baseline(request: HttpRequest) -> HttpResponse:
    return HttpResponse(BASELINE_TWIML, content_type="text/xml")


urlpatterns = [
    path("bench/baseline/", baseline),
    path("", include("securegather.urls")),
]
