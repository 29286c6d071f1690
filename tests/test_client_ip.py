"""The participant's recorded IP address: the socket's, or X-Forwarded-For's only behind a trusted proxy."""

from __future__ import annotations

import pytest

from participant_flow import browser, ids, row, running_app

PEER = "203.0.113.7"


async def recorded_ip(make_settings, *, trusted: str, forwarded: str | None) -> str:  # type: ignore[no-untyped-def]
    """Arrive from PEER with this X-Forwarded-For; the address stored for the participant."""
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    async with running_app(make_settings(trusted_proxies=trusted)) as app, browser(app, address=PEER) as http:
        assert (await http.get("/exp", params=ids(), headers=headers)).status_code == 200
        return (await row(app, "W1:A1"))["ipaddress"]


async def test_without_trusted_proxies_the_socket_address_is_recorded(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert await recorded_ip(make_settings, trusted="", forwarded="198.51.100.9") == PEER


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert await recorded_ip(make_settings, trusted="10.0.0.1, 10.0.0.2", forwarded="198.51.100.9") == PEER


async def test_forwarded_for_from_a_trusted_proxy_is_believed(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert await recorded_ip(make_settings, trusted=PEER, forwarded="198.51.100.9") == "198.51.100.9"


async def test_a_forged_hop_before_the_real_one_is_not_believed(make_settings) -> None:  # type: ignore[no-untyped-def]
    # The client wrote 192.0.2.66 itself; the trusted proxy appended the address it saw.
    assert await recorded_ip(make_settings, trusted=PEER, forwarded="192.0.2.66, 198.51.100.9") == "198.51.100.9"


async def test_trusted_inner_proxies_are_skipped(make_settings) -> None:  # type: ignore[no-untyped-def]
    recorded = await recorded_ip(make_settings, trusted=f"{PEER}, 10.0.0.2", forwarded="198.51.100.9, 10.0.0.2")

    assert recorded == "198.51.100.9"


@pytest.mark.parametrize("forwarded", [None, "", "not-an-address", "198.51.100.9:443x"])
async def test_a_missing_or_malformed_forwarded_for_falls_back_to_the_socket(make_settings,  # type: ignore[no-untyped-def]
                                                                              forwarded: str | None) -> None:
    assert await recorded_ip(make_settings, trusted=PEER, forwarded=forwarded) == PEER


async def test_an_ipv6_client_behind_a_trusted_proxy_is_recorded(make_settings) -> None:  # type: ignore[no-untyped-def]
    assert await recorded_ip(make_settings, trusted=PEER, forwarded="2001:db8::17") == "2001:db8::17"
