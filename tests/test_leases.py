"""Channel leases across replicas: epochs, expiry, fencing, fair shares and handover."""

from __future__ import annotations

import math
from datetime import timedelta

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.db.engine import Database
from daemon.leases import LEASE, Held, LeaseKeeper, LeaseStore, assign, fair_share, owners
from domain.clock import ManualClock

CHANNELS = [f"ch-{i}" for i in range(6)]


async def test_acquire_renew_expire_and_takeover(db: Database, clock: ManualClock) -> None:
    store = LeaseStore(db, ttl_s=15, clock=clock)
    first = await store.acquire("amazon-us", "a")
    assert first == Held("amazon-us", 1)
    assert await store.acquire("amazon-us", "b") is None  # held and unexpired
    clock.advance(10)
    assert await store.renew(first, "a")
    clock.advance(10)
    assert await store.acquire("amazon-us", "b") is None  # the renewal moved the expiry
    clock.advance(6)
    taken = await store.acquire("amazon-us", "b")
    assert taken == Held("amazon-us", 2)
    assert not await store.renew(first, "a")  # the old holder learns it lost the lease
    assert not await store.release(first, "a")
    assert owners(await store.holders()) == {"amazon-us": "b"}


async def test_release_hands_over_at_once(db: Database, clock: ManualClock) -> None:
    store = LeaseStore(db, ttl_s=15, clock=clock)
    held = await store.acquire("ebay", "a")
    assert held is not None
    assert await store.release(held, "a")
    assert await store.holders() == {}
    assert await store.acquire("ebay", "b") == Held("ebay", 2)


async def test_fence_stops_a_stale_holder(db: Database, clock: ManualClock) -> None:
    """A replica paused past its lease changes nothing once another took over — nor before."""
    store = LeaseStore(db, ttl_s=15, clock=clock)
    stale = await store.acquire("walmart", "a")
    assert stale is not None

    async def fenced_touch(held: Held, holder: str) -> int:
        # Any UPDATE of a channel's work ANDs the fence in; the lease row stands in for it here.
        stmt = (
            sa.update(LEASE)
            .where(LEASE.c.channel == "walmart", store.fence(held, holder))
            .values(renewed_at=clock.now())
        )
        async with db.write() as conn:
            return (await conn.execute(stmt)).rowcount

    assert await fenced_touch(stale, "a") == 1
    clock.advance(16)  # "a" is paused by the OS past the TTL ...
    assert await fenced_touch(stale, "a") == 0  # ... expired: refused even before a takeover
    fresh = await store.acquire("walmart", "b")
    assert fresh == Held("walmart", 2)
    assert await fenced_touch(stale, "a") == 0
    assert await fenced_touch(fresh, "b") == 1


async def test_database_clock_judges_expiry_on_postgres_too(db: Database) -> None:
    """Without an injected clock, expiry is the database's now() (SQLite: the local clock)."""
    store = LeaseStore(db, ttl_s=3600)
    held = await store.acquire("shopify", "a")
    assert held is not None
    assert await store.renew(held, "a")
    assert await store.acquire("shopify", "b") is None
    assert owners(await store.holders()) == {"shopify": "a"}


def test_assign_is_fair_and_total() -> None:
    owner = assign(CHANNELS, ["r1", "r2", "r3"])
    assert sorted(owner) == CHANNELS
    assert sorted(list(owner.values()).count(r) for r in ("r1", "r2", "r3")) == [2, 2, 2]
    assert assign(CHANNELS, []) == {}


@settings(max_examples=200, deadline=None)
@given(
    channels=st.sets(st.text("abcdefgh-", min_size=1, max_size=8), min_size=1, max_size=40),
    replicas=st.sets(st.text("xyz0123", min_size=1, max_size=5), min_size=1, max_size=8),
)
def test_assign_properties(channels: set[str], replicas: set[str]) -> None:
    owner = assign(channels, replicas)
    assert set(owner) == channels  # every channel has exactly one intended owner
    assert set(owner.values()) <= replicas
    cap = fair_share(len(channels), len(replicas))
    assert all(list(owner.values()).count(r) <= cap for r in replicas)
    assert owner == assign(sorted(channels, reverse=True), sorted(replicas))  # order-free


def test_a_join_moves_few_channels() -> None:
    channels = [f"account-{i}" for i in range(100)]
    replicas = [f"replica-{i}" for i in range(4)]
    before = assign(channels, replicas)
    after = assign(channels, [*replicas, "replica-4"])
    moved = sum(before[c] != after[c] for c in channels)
    # The newcomer takes its fifth; bounded loads may shuffle a few more, never a rehash.
    assert math.ceil(100 / 5) <= moved <= 2 * math.ceil(100 / 5)


async def test_keepers_share_channels_and_take_over(db: Database, clock: ManualClock) -> None:
    store = LeaseStore(db, ttl_s=15, clock=clock)
    events: list[tuple[str, str, str]] = []

    def keeper(name: str) -> LeaseKeeper:
        async def gain(held: Held) -> None:
            events.append((name, "gain", held.channel))

        async def loss(held: Held) -> None:
            events.append((name, "loss", held.channel))

        return LeaseKeeper(store, CHANNELS, clock, replica=name, on_gain=gain, on_loss=loss)

    a, b = keeper("a"), keeper("b")
    await a.tick()
    assert set(a.held) == set(CHANNELS)  # alone, it owns everything
    await b.tick()  # b appears: a's next round hands b's share over, b's next round takes it
    await a.tick()
    await b.tick()
    assert len(a.held) == len(b.held) == 3
    assert not set(a.held) & set(b.held)
    assert owners(await store.holders()) == {
        **dict.fromkeys(a.held, "a"),
        **dict.fromkeys(b.held, "b"),
    }
    lost_by_a = {c for n, e, c in events if n == "a" and e == "loss"}
    assert lost_by_a == set(b.held)

    # b dies without a word (kill -9): its heartbeat and leases age out; a takes all back.
    clock.advance(16)
    await a.tick()
    assert set(a.held) == set(CHANNELS)
    epochs = {h.channel: h.epoch for h in a.held.values()}
    assert all(epochs[c] == 3 for c in b.held)  # a (1), b (2), a again (3): fenced epochs


async def test_a_paused_keeper_drops_its_leases_first(db: Database, clock: ManualClock) -> None:
    store = LeaseStore(db, ttl_s=15, clock=clock)
    lost: list[str] = []

    async def loss(held: Held) -> None:
        lost.append(held.channel)

    keeper = LeaseKeeper(store, ["amazon-us"], clock, replica="a", on_loss=loss)
    await keeper.tick()
    first = keeper.holds("amazon-us")
    assert first is not None
    clock.advance(60)  # SIGSTOP for a minute
    await keeper.tick()
    assert lost == ["amazon-us"]  # told to stop the channel's work before anything else
    again = keeper.holds("amazon-us")
    assert again is not None
    assert again.epoch == first.epoch + 1


async def test_stop_releases_and_forgets(db: Database, clock: ManualClock) -> None:
    store = LeaseStore(db, ttl_s=15, clock=clock)
    keeper = LeaseKeeper(store, CHANNELS, clock, replica="a")
    await keeper.tick()
    await keeper.stop()
    assert await store.holders() == {}
    assert await store.live_replicas() == []
    assert keeper.held == {}


async def test_replicas_are_forgotten_after_long_silence(db: Database, clock: ManualClock) -> None:
    store = LeaseStore(db, ttl_s=15, clock=clock)
    await store.heartbeat("old", started_at=clock.now(), pid=1, host="h")
    clock.advance(timedelta(minutes=10).total_seconds())
    await store.heartbeat("new", started_at=clock.now(), pid=2, host="h")
    assert await store.live_replicas() == ["new"]
    async with db.read() as conn:
        ids = {row[0] for row in await conn.execute(sa.text("SELECT id FROM replica"))}
    assert ids == {"new"}
