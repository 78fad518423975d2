"""Shared helpers for the website-chat tests: a channel, and a visitor's frame as a client."""

from __future__ import annotations

import json
import uuid

from channels_adapters.webchat.tokens import identity_hash
from tests.factories import ChannelFactory

SITE = "https://shop.example"
SECRET = "identity-secret-for-tests"


def webchat_channel(**settings_overrides):
    return ChannelFactory(
        kind="webchat",
        name="Website chat",
        credentials={"identity_secret": SECRET},
        settings={"allowed_origins": [SITE], **settings_overrides},
    )


class Frame:
    """What our frame does from the visitor's browser: start a session, then call the API."""

    def __init__(self, client, channel, *, origin: str = SITE):
        self.client, self.channel, self.origin = client, channel, origin
        self.token = None

    def url(self, name: str) -> str:
        return f"/widget/{self.channel.key}/api/{name}"

    def start(self, **body):
        payload = {
            "origin": self.origin,
            "token": self.token,
            "page": {"url": SITE + "/shoes", "title": "Shoes"},
        }
        payload.update(body)
        response = self.client.post(self.url("session"), json.dumps(payload), content_type="application/json")
        if response.status_code == 200:
            self.token = response.json()["token"]
        return response

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(self, text: str = "", *, client_id: str | None = None, **extra):
        body = {"client_id": client_id or uuid.uuid4().hex, "text": text, **extra}
        return self.client.post(
            self.url("messages"), json.dumps(body), content_type="application/json", headers=self.headers()
        )

    def upload(self, name: str, content: bytes, content_type: str, text: str = ""):
        from django.core.files.uploadedfile import SimpleUploadedFile

        return self.client.post(
            self.url("messages"),
            {
                "client_id": uuid.uuid4().hex,
                "text": text,
                "file": SimpleUploadedFile(name, content, content_type),
            },
            headers=self.headers(),
        )

    def messages(self, **query):
        return self.client.get(self.url("messages"), query, headers=self.headers())

    def post(self, name: str, body: dict):
        return self.client.post(
            self.url(name), json.dumps(body), content_type="application/json", headers=self.headers()
        )


def verified_user(identifier: str, **profile) -> dict:
    return {"user": {"identifier": identifier, **profile}, "hash": identity_hash(SECRET, identifier)}
