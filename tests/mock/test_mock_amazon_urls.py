"""Presigned document URLs of the mock SP-API name the server's own address, never ``Host``.

python-amazon-sp-api (unchanged) derives ``Host`` by cutting 8 characters off its endpoint, made
for ``https://``: an ``http://127.0.0.1:P`` endpoint goes out as ``Host: 27.0.0.1:P``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from connectors.mock.amazon import AmazonMockState, start
from domain.clock import ManualClock

FEED_DOCUMENTS = "/feeds/2021-06-30/documents"
JSON = "application/json"


@dataclass
class Served:
    """A running mock, its base URL and an authorised client on it."""

    state: AmazonMockState
    base_url: str
    http: httpx.AsyncClient
    auth: dict[str, str]


async def _serve(state: AmazonMockState) -> AsyncIterator[Served]:
    runner, base_url = await start(state)
    async with httpx.AsyncClient(base_url=base_url) as http:
        grant = await http.post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": state.refresh_token,
                "client_id": state.client_id,
                "client_secret": state.client_secret,
            },
        )
        token = grant.json()["access_token"]
        yield Served(state, base_url, http, {"x-amz-access-token": token})
    await runner.cleanup()


@pytest.fixture
async def served(clock: ManualClock) -> AsyncIterator[Served]:
    async for running in _serve(AmazonMockState(clock=clock, feed_processing_s=0)):
        yield running


def _mangled_host(base_url: str) -> dict[str, str]:
    """The Host python-amazon-sp-api sends for an http:// endpoint: ``endpoint[8:]``."""
    return {"Host": base_url[8:]}


async def test_upload_and_download_urls_use_the_bound_address_not_host(served: Served) -> None:
    mangled = _mangled_host(served.base_url)
    assert mangled["Host"].startswith("27.0.0.1:")
    created = await served.http.post(
        FEED_DOCUMENTS, json={"contentType": JSON}, headers={**served.auth, **mangled}
    )
    assert created.status_code == 201
    upload = created.json()["url"]
    assert urlsplit(upload)._replace(path="", query="").geturl() == served.base_url
    assert urlsplit(upload).path == f"/_s3/upload/{created.json()['feedDocumentId']}"
    # The URL works as handed out (the signature covers it as it is).
    put = await served.http.put(upload, content=b"{}", headers={"Content-Type": JSON})
    assert put.status_code == 200
    document_id = created.json()["feedDocumentId"]
    described = await served.http.get(
        f"{FEED_DOCUMENTS}/{document_id}", headers={**served.auth, **mangled}
    )
    download = described.json()["url"]
    assert urlsplit(download)._replace(path="", query="").geturl() == served.base_url
    assert (await served.http.get(download)).content == b"{}"


async def test_a_configured_public_url_is_the_base_instead(clock: ManualClock) -> None:
    state = AmazonMockState(clock=clock, public_url="http://mock-amazon.test:8101/")
    async for running in _serve(state):
        created = await running.http.post(
            FEED_DOCUMENTS, json={"contentType": JSON}, headers=running.auth
        )
        url = created.json()["url"]
        document_id = created.json()["feedDocumentId"]
        assert url.startswith(f"http://mock-amazon.test:8101/_s3/upload/{document_id}?")
