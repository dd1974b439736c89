"""Channel ownership across replicas: leases with epochs in the database, and fencing.

Several replicas share one PostgreSQL. Each channel (one marketplace account) is owned by one
replica at a time through a row of ``channel_lease``: acquiring a free or expired lease bumps
its epoch; the owner renews it well before it expires; work for the channel carries
(holder, epoch) and every claim or completion is fenced on it in SQL (``fence``), so a replica
that lost its lease — paused by the OS past the expiry, say — can change nothing for that
channel, whatever its own clock believes. Expiry is judged by the database's clock on
PostgreSQL (``now()``), so replicas with skewed clocks agree; on SQLite (one process) and in
tests the injected clock is used instead.

Which replica *should* own which channel is a pure function (``assign``) of the configured
channels and the live replicas (heartbeats in ``replica``): rendezvous hashing with a cap of a
fair share each, so every replica computes the same answer and a join or a leave moves few
channels. ``LeaseKeeper`` runs that loop for one replica.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.engine import Database
from daemon.db.models import ChannelLease, Replica
from domain.clock import Clock, SystemClock

log = structlog.get_logger(__name__)

LEASE = ChannelLease.__table__  # type: ignore[attr-defined]
REPLICA = Replica.__table__  # type: ignore[attr-defined]

DEFAULT_TTL_S = 15.0
# A replica whose heartbeat is older than this many TTLs is deleted (it is long gone).
FORGET_AFTER_TTLS = 20


def new_replica_id() -> str:
    """A replica id unique across hosts and restarts: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LeaseLostError(RuntimeError):
    """A fenced write changed fewer rows than it should: the channel's lease moved or expired."""


@dataclass(frozen=True, slots=True)
class Held:
    """A lease this replica holds: the channel and the epoch its work is fenced on."""

    channel: str
    epoch: int


class LeaseStore:
    """The lease and heartbeat rows, with time from the database (or an injected clock)."""

    def __init__(
        self, db: Database, *, ttl_s: float = DEFAULT_TTL_S, clock: Clock | None = None
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("lease ttl must be positive")
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)
        # SQLite is one process: its clock is the only clock. PostgreSQL judges by now().
        if clock is None and db.is_sqlite:
            clock = SystemClock()
        self._clock = clock

    def now(self) -> Any:
        """The time expression leases are judged by: the database's ``now()`` or a bound time."""
        if self._clock is None:
            return sa.func.now()
        return sa.literal(self._clock.now(), type_=LEASE.c.expires_at.type)

    def _after(self, delta: timedelta) -> Any:
        if self._clock is None:
            return sa.func.now() + sa.literal(delta, type_=sa.Interval())
        return sa.literal(self._clock.now() + delta, type_=LEASE.c.expires_at.type)

    async def acquire(self, channel: str, holder: str) -> Held | None:
        """Take ``channel``'s lease if it is free or expired (its epoch goes up by one)."""
        now, expires = self.now(), self._after(self.ttl)
        insert = self.db.insert(LEASE).values(
            channel=channel, holder=holder, epoch=1, acquired_at=now, renewed_at=now,
            expires_at=expires,
        )  # fmt: skip
        stmt = insert.on_conflict_do_update(
            index_elements=["channel"],
            set_={
                "holder": holder,
                "epoch": LEASE.c.epoch + 1,
                "acquired_at": now,
                "renewed_at": now,
                "expires_at": expires,
            },
            where=sa.or_(LEASE.c.holder.is_(None), LEASE.c.expires_at <= now),
        ).returning(LEASE.c.epoch)
        async with self.db.write() as conn:
            epoch = (await conn.execute(stmt)).scalar_one_or_none()
        return None if epoch is None else Held(channel, int(epoch))

    async def renew(self, held: Held, holder: str) -> bool:
        """Extend a lease still held under this epoch and not expired; False if it is lost."""
        stmt = (
            sa.update(LEASE)
            .where(LEASE.c.channel == held.channel, self.fence_clause(held, holder))
            .values(renewed_at=self.now(), expires_at=self._after(self.ttl))
            .returning(LEASE.c.epoch)
        )
        async with self.db.write() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none() is not None

    async def release(self, held: Held, holder: str) -> bool:
        """Give a lease up at once (a handover or a clean stop); False if it was already lost."""
        stmt = (
            sa.update(LEASE)
            .where(
                LEASE.c.channel == held.channel,
                LEASE.c.holder == holder,
                LEASE.c.epoch == held.epoch,
            )
            .values(holder=None, expires_at=self.now())
            .returning(LEASE.c.epoch)
        )
        async with self.db.write() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none() is not None

    def fence_clause(self, held: Held, holder: str) -> sa.ColumnElement[bool]:
        """True while ``holder`` holds ``held`` unexpired (for a WHERE on the lease row itself)."""
        return sa.and_(
            LEASE.c.holder == holder,
            LEASE.c.epoch == held.epoch,
            LEASE.c.expires_at > self.now(),
        )

    def fence(self, held: Held, holder: str) -> sa.ColumnElement[bool]:
        """An EXISTS to AND into any UPDATE of a channel's work (claims, completions).

        A replica whose lease expired or was taken over (a higher epoch) changes 0 rows, even
        if it has not noticed yet; the database decides, not the stale replica's clock.
        """
        lease = LEASE.alias("fence_lease")
        return sa.exists().where(
            lease.c.channel == held.channel,
            lease.c.holder == holder,
            lease.c.epoch == held.epoch,
            lease.c.expires_at > self.now(),
        )

    async def heartbeat(self, replica: str, *, started_at: datetime, pid: int, host: str) -> None:
        """Record that ``replica`` is alive now."""
        now = self.now()
        stmt = self.db.insert(REPLICA).values(
            id=replica, host=host[:255], pid=pid, started_at=started_at, heartbeat_at=now
        )
        stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={"heartbeat_at": now})
        async with self.db.write() as conn:
            await conn.execute(stmt)
            await conn.execute(
                sa.delete(REPLICA).where(
                    REPLICA.c.heartbeat_at < self._after(-self.ttl * FORGET_AFTER_TTLS)
                )
            )

    async def forget(self, replica: str) -> None:
        """Remove a replica's heartbeat (a clean stop: the others rebalance at once)."""
        async with self.db.write() as conn:
            await conn.execute(sa.delete(REPLICA).where(REPLICA.c.id == replica))

    async def live_replicas(self) -> list[str]:
        """Replicas whose heartbeat is younger than one TTL."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(REPLICA.c.id).where(REPLICA.c.heartbeat_at > self._after(-self.ttl))
            )
            return sorted(row[0] for row in rows)

    async def holders(self, conn: AsyncConnection | None = None) -> dict[str, tuple[str, int]]:
        """Every unexpired lease: channel → (holder, epoch)."""
        query = sa.select(LEASE.c.channel, LEASE.c.holder, LEASE.c.epoch).where(
            LEASE.c.holder.is_not(None), LEASE.c.expires_at > self.now()
        )
        if conn is not None:
            return {c: (h, int(e)) for c, h, e in await conn.execute(query)}
        async with self.db.read() as reader:
            return {c: (h, int(e)) for c, h, e in await reader.execute(query)}


def _score(channel: str, replica: str) -> int:
    digest = hashlib.blake2b(f"{channel}\0{replica}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def fair_share(channels: int, replicas: int) -> int:
    """The most channels one replica may own: ceil(channels / replicas)."""
    return math.ceil(channels / replicas) if replicas else 0


def assign(channels: Iterable[str], replicas: Collection[str]) -> dict[str, str]:
    """Which live replica should own each channel: the same answer on every replica.

    Rendezvous hashing with bounded load: (channel, replica) pairs are taken in order of
    their hash score and a pair is kept while the channel has no owner and the replica is
    under its fair share. A replica joining or leaving moves about 1/N of the channels.
    """
    names = sorted(set(channels))
    live = sorted(set(replicas))
    if not live:
        return {}
    cap = fair_share(len(names), len(live))
    pairs = sorted(
        ((_score(c, r), c, r) for c in names for r in live), key=lambda p: (-p[0], p[1], p[2])
    )
    owner: dict[str, str] = {}
    load = dict.fromkeys(live, 0)
    for _, channel, replica in pairs:
        if channel not in owner and load[replica] < cap:
            owner[channel] = replica
            load[replica] += 1
    return owner


Callback = Callable[[Held], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


async def _nothing(_: Held) -> None:
    return None


@dataclass
class LeaseKeeper:
    """One replica's side of ownership: heartbeat, renew, acquire its share, hand the rest over.

    ``tick`` does one round (tests drive it); ``run`` repeats it every TTL/3. Losing a lease
    — a renewal refused, or no successful renewal for a whole TTL by the local monotonic
    clock (the process was paused) — calls ``on_loss`` before anything else happens.
    """

    store: LeaseStore
    channels: Collection[str]
    clock: Clock
    replica: str = field(default_factory=new_replica_id)
    on_gain: Callback = _nothing
    on_loss: Callback = _nothing
    sleep: Sleep = asyncio.sleep
    held: dict[str, Held] = field(default_factory=dict)
    _renewed: dict[str, float] = field(default_factory=dict)  # channel → monotonic time
    _started: datetime | None = None

    @property
    def interval_s(self) -> float:
        """How often a round runs: a third of the TTL, so two renewals may fail before expiry."""
        return self.store.ttl.total_seconds() / 3

    def holds(self, channel: str) -> Held | None:
        """The lease this replica believes it holds on ``channel`` (the DB fence is the truth)."""
        return self.held.get(channel)

    def fresh(self, channel: str) -> bool:
        """Held and renewed within one TTL by the local monotonic clock.

        A process resumed after a pause longer than the TTL sees False at once, before its
        next round has noticed the loss: new work for the channel is not started meanwhile.
        """
        since = self._renewed.get(channel)
        if channel not in self.held or since is None:
            return False
        return self.clock.monotonic() - since < self.store.ttl.total_seconds()

    def fence(self, channel: str) -> sa.ColumnElement[bool]:
        """The SQL fence for work on ``channel``: false outright when it is not held."""
        held = self.held.get(channel)
        return sa.false() if held is None else self.store.fence(held, self.replica)

    async def tick(self) -> None:
        """One round: heartbeat, renew or drop held leases, acquire this replica's share."""
        ttl = self.store.ttl.total_seconds()
        for channel, since in list(self._renewed.items()):
            if self.clock.monotonic() - since >= ttl:
                await self._lose(channel, "not renewed within the lease ttl")
        self._started = self._started or self.clock.now()
        await self.store.heartbeat(
            self.replica, started_at=self._started, pid=os.getpid(), host=socket.gethostname()
        )
        for held in list(self.held.values()):
            if await self.store.renew(held, self.replica):
                self._renewed[held.channel] = self.clock.monotonic()
            else:
                await self._lose(held.channel, "renewal refused")
        intended = assign(self.channels, await self.store.live_replicas())
        for channel, held in list(self.held.items()):
            if intended.get(channel, self.replica) != self.replica:
                # Someone live should own it: hand it over now rather than at expiry. Its work
                # stops first (on_loss), so nothing of ours is claimed after the release.
                await self._lose(channel, f"handed over to {intended[channel]}")
                await self.store.release(held, self.replica)
        for channel in sorted(c for c, r in intended.items() if r == self.replica):
            if channel in self.held:
                continue
            gained = await self.store.acquire(channel, self.replica)
            if gained is not None:
                self.held[channel] = gained
                self._renewed[channel] = self.clock.monotonic()
                log.info("lease_gained", channel=channel, epoch=gained.epoch)
                await self.on_gain(gained)

    async def _lose(self, channel: str, why: str) -> None:
        held = self.held.pop(channel, None)
        self._renewed.pop(channel, None)
        if held is not None:
            log.warning("lease_lost", channel=channel, epoch=held.epoch, why=why)
            await self.on_loss(held)

    async def run(self) -> None:
        """Keep ownership until cancelled; a failed round is logged and retried next interval."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("lease_round_failed", error=str(err).splitlines()[0][:200])
            await self.sleep(self.interval_s)

    async def stop(self) -> None:
        """Release every held lease and forget this replica, so others take over at once."""
        for held in list(self.held.values()):
            await self._lose(held.channel, "stopping")
            await self.store.release(held, self.replica)
        await self.store.forget(self.replica)


def owners(holders: Mapping[str, tuple[str, int]]) -> dict[str, str]:
    """channel → holder, from ``LeaseStore.holders`` (status and tests)."""
    return {channel: holder for channel, (holder, _) in holders.items()}
