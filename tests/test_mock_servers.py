"""`repricerd mock-marketplaces` and `run --mock-marketplaces`: the mocks a config points at."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from connectors.mock.servers import is_loopback, start_mocks, stop_mocks
from daemon.cli import main
from daemon.config import load_config
from tests.daemon_fixtures import demo_env

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_on_free_ports(tmp_path: Path) -> Path:
    text = (ROOT / "config" / "repricerd.yaml").read_text()
    text = text.replace("config/demo-catalog.csv", str(ROOT / "config" / "demo-catalog.csv"))
    for port in ("8101", "8102", "8103", "8104"):
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    return path


def test_loopback_detection() -> None:
    assert is_loopback("http://127.0.0.1:8101")
    assert is_loopback("http://localhost:9")
    assert is_loopback("http://[::1]:80")
    assert not is_loopback("https://sellingpartnerapi-na.amazon.com")
    assert not is_loopback("http://10.0.0.5:8101")


async def test_the_demo_mocks_accept_exactly_the_demo_channels_credentials(tmp_path: Path) -> None:
    loaded = load_config(demo_on_free_ports(tmp_path), environ=demo_env())
    channels = loaded.settings.channels
    mocks = await start_mocks(
        channels, catalog=loaded.settings.catalog.import_on_start, webhook_base=None
    )
    try:
        assert {m.channel: m.kind for m in mocks} == {
            "amazon-demo": "amazon",
            "shop-demo": "shopify",
            "walmart-demo": "walmart",
            "ebay-demo": "ebay",
        }
        amazon = next(m for m in mocks if m.kind == "amazon")
        async with httpx.AsyncClient() as http:
            creds = channels["amazon-demo"].credentials  # type: ignore[union-attr]
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.refresh_token.get_secret_value(),
                "client_id": creds.client_id,
                "client_secret": creds.client_secret.get_secret_value(),
            }
            ok = await http.post(f"{amazon.base_url}/auth/o2/token", data=form)
            assert ok.status_code == 200
            bad = await http.post(
                f"{amazon.base_url}/auth/o2/token", data={**form, "client_secret": "wrong-secret"}
            )
            assert bad.status_code in (400, 401)
        assert len(amazon.state.market.listings) == 50
    finally:
        await stop_mocks(mocks)


@pytest.mark.usefixtures("restore_logging")
def test_mock_marketplaces_without_a_mockable_channel_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("channels: {alpha: {kind: mock}}\npricing: {rules: [{strategy: hold}]}\n")
    result = CliRunner().invoke(main, ["mock-marketplaces", "-c", str(path)])
    assert result.exit_code == 1
    assert "no channel of a mockable kind" in result.stderr
