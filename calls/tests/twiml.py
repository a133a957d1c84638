"""Reading TwiML answers in tests."""

import xml.etree.ElementTree as ET


def parse(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/xml"
    return ET.fromstring(response.content)


def spoken(response) -> str:
    return " ".join(say.text or "" for say in parse(response).iter("Say"))


def gather(response) -> ET.Element | None:
    return parse(response).find("Gather")


def hangs_up(response) -> bool:
    return parse(response).find("Hangup") is not None
