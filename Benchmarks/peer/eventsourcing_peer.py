"""The peer baseline for kappa-bench: the Python `eventsourcing` library (9.5, psycopg 3) on the
same cart workload and the same server, so that `kappa-bench` can print its figures beside Kappa's.

The workload mirrors Kappa's bench fixtures: carts whose items are added and removed and which are
checked out, and a read model of two tables (`carts`, `lines`) written three statements an event as
a new user writes one, with the library's tracking record in the same transaction
(`PostgresTrackingRecorder`, driven by its `ProjectionRunner`, woken by LISTEN/NOTIFY).

Each mode prints one JSON object on its last line of standard output:

    append  --writers N --events E        {"events_per_second": ...}
    live    --rate R --seconds S          {"p50_ms": ..., "p99_ms": ..., "max_ms": ..., "samples": ..., "missing": ...}
    catchup --carts C --events-per-cart K {"events_per_second": ..., "seconds": ..., "events": ...}

The connection comes from the PG* environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
PGDATABASE). Everything is written to the schema `py_eventsourcing`, dropped first.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.synchronize
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import psycopg
from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from psycopg.sql import SQL
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import get_topic

SCHEMA = "py_eventsourcing"


class Cart(Aggregate):
    """A cart as the library's users write one: methods that trigger events."""

    @event("Opened")
    def __init__(self, cart_id: str) -> None:
        self.cart_id = cart_id

    @event("ItemAddedToCart")
    def add_item(self, sku: str, quantity: int, unit_price: int) -> None:
        pass

    @event("ItemRemovedFromCart")
    def remove_item(self, sku: str, quantity: int, unit_price: int) -> None:
        pass

    @event("CartCheckedOut")
    def check_out(self) -> None:
        pass


class Shop(Application[UUID]):
    pass


class CartLinesView(PostgresTrackingRecorder):
    """The read model: the same two tables and three statements an event as Kappa's
    `CartLinesProjection`, each event in a transaction with its tracking record."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS py_eventsourcing.carts (cart_id text PRIMARY KEY, "
            "items bigint NOT NULL, total_cents bigint NOT NULL, checked_out boolean NOT NULL, "
            "events bigint NOT NULL)")
        )
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS py_eventsourcing.lines (cart_id text, sku text, "
            "quantity bigint NOT NULL, unit_price bigint NOT NULL, PRIMARY KEY (cart_id, sku))")
        )

    RECOMPUTE = (
        "UPDATE py_eventsourcing.carts c SET events = events + 1, (items, total_cents) = "
        "(SELECT coalesce(sum(quantity), 0), coalesce(sum(quantity * unit_price), 0) "
        "FROM py_eventsourcing.lines l WHERE l.cart_id = c.cart_id) WHERE cart_id = %s"
    )

    def item_added(self, cart: str, sku: str, quantity: int, price: int, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO py_eventsourcing.carts VALUES (%s, 0, 0, false, 0) ON CONFLICT DO NOTHING",
                (cart,),
                prepare=True,
            )
            curs.execute(
                "INSERT INTO py_eventsourcing.lines VALUES (%s, %s, %s, %s) ON CONFLICT (cart_id, sku) "
                "DO UPDATE SET quantity = lines.quantity + excluded.quantity",
                (cart, sku, quantity, price),
                prepare=True,
            )
            curs.execute(self.RECOMPUTE, (cart,), prepare=True)
            self._insert_tracking(curs, tracking)

    def item_removed(self, cart: str, sku: str, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "DELETE FROM py_eventsourcing.lines WHERE cart_id = %s AND sku = %s", (cart, sku), prepare=True
            )
            curs.execute(self.RECOMPUTE, (cart,), prepare=True)
            self._insert_tracking(curs, tracking)

    def checked_out(self, cart: str, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "UPDATE py_eventsourcing.carts SET (checked_out, events) = (true, events + 1) WHERE cart_id = %s",
                (cart,),
                prepare=True,
            )
            self._insert_tracking(curs, tracking)

    def passed(self) -> int:
        return self.max_tracking_id(Shop.name) or 0


class CartLinesProjection(Projection[CartLinesView]):
    name = "cart_lines"
    topics = (get_topic(Cart.ItemAddedToCart), get_topic(Cart.ItemRemovedFromCart), get_topic(Cart.CartCheckedOut))

    @singledispatchmethod
    def process_event(self, domain_event: object, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, domain_event: Cart.ItemAddedToCart, tracking: Tracking) -> None:
        cart = str(domain_event.originator_id)
        self.view.item_added(cart, domain_event.sku, domain_event.quantity, domain_event.unit_price, tracking)

    @process_event.register
    def _(self, domain_event: Cart.ItemRemovedFromCart, tracking: Tracking) -> None:
        self.view.item_removed(str(domain_event.originator_id), domain_event.sku, tracking)

    @process_event.register
    def _(self, domain_event: Cart.CartCheckedOut, tracking: Tracking) -> None:
        self.view.checked_out(str(domain_event.originator_id), tracking)


def environment(pool_size: int) -> dict[str, str]:
    host = os.environ.get("PGHOST", "localhost")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": os.environ.get("PGDATABASE", "postgres"),
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": os.environ.get("PGPORT", "5432"),
        "POSTGRES_USER": os.environ.get("PGUSER", "postgres"),
        "POSTGRES_PASSWORD": os.environ.get("PGPASSWORD", ""),
        "POSTGRES_SCHEMA": SCHEMA,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "CREATE_TABLE": "y",
    }


def fresh_schema() -> None:
    with psycopg.connect(autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")


def append(writers: int, events: int) -> dict[str, float]:
    """Each append a new cart's first event, one event a transaction, from `writers` threads."""
    fresh_schema()
    app = Shop(env=environment(writers))
    app.save(Cart("warm-up"))
    per_writer = events // writers

    def write(_: int) -> None:
        for _ in range(per_writer):
            app.save(Cart("c"))

    start = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    elapsed = time.perf_counter() - start
    app.close()
    return {"events_per_second": per_writer * writers / elapsed, "seconds": elapsed}


def seed(app: Shop, carts: int, events_per_cart: int) -> int:
    """The same carts Kappa's bench seeds: adds, every fifth a removal, a checkout last."""
    batch: list[Cart] = []
    for number in range(carts):
        cart = Cart(f"c{number}")
        for n in range(events_per_cart - 1):
            if n % 5 == 4:
                cart.remove_item(f"SKU-{n - 1}", 1, 100 + n - 1)
            else:
                cart.add_item(f"SKU-{n}", 1 + n % 3, 100 + n)
        cart.check_out()
        batch.append(cart)
        if len(batch) == 100:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)
    return app.recorder.max_notification_id() or 0


def catchup(carts: int, events_per_cart: int) -> dict[str, float]:
    fresh_schema()
    env = environment(2)
    app = Shop(env=env)
    last = seed(app, carts, events_per_cart)
    app.close()
    # As Kappa's bench leaves its seeded log: vacuumed, analysed and written out.
    with psycopg.connect(autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {SCHEMA}.shop_events")
        conn.execute("CHECKPOINT")
    start = time.perf_counter()
    with ProjectionRunner(
        application_class=Shop, projection_class=CartLinesProjection, view_class=CartLinesView, env=env
    ), psycopg.connect(autocommit=True) as conn:
        # Polled every 2 ms (the library's own wait backs off to 0.8 s).
        while True:
            try:
                if tracked(conn) >= last:
                    break
            except psycopg.errors.UndefinedTable:
                pass
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
    with psycopg.connect() as conn:
        rows = conn.execute(f"SELECT count(*), sum(events) FROM {SCHEMA}.carts").fetchone()
    # Each cart's row counts its adds, removals and checkout (the Opened events are not applied).
    expected = carts * events_per_cart
    if rows != (carts, expected):
        raise SystemExit(f"read model wrong: {rows}, expected ({carts}, {expected})")
    # The events the projection applies (each cart's Opened event, which it does not subscribe to, aside).
    events = carts * events_per_cart
    return {"events_per_second": events / elapsed, "seconds": elapsed, "events": events}


def follow(env: dict[str, str], stop: multiprocessing.synchronize.Event) -> None:
    """The projection, in a process of its own as it would be deployed (no lock shared with the writers)."""
    with ProjectionRunner(
        application_class=Shop, projection_class=CartLinesProjection, view_class=CartLinesView, env=env
    ) as runner:
        while not stop.wait(0.1):
            runner.run_forever(timeout=0)


def tracked(conn: psycopg.Connection) -> int:
    statement = f"SELECT notification_id FROM {SCHEMA}.cart_lines_tracking WHERE application_name = %s"
    row = conn.execute(statement, (Shop.name,), prepare=True).fetchone()
    return row[0] if row else 0


def live(rate: int, seconds: int) -> dict[str, float]:
    """Appends an item to one of 500 carts at `rate` a second; for each, the time from its commit
    until the view's tracking record has passed it, polled every 0.5 ms."""
    fresh_schema()
    env = environment(16)
    # The log's tables first; then the follower, forked before this process holds a connection or a
    # thread (forked, not spawned: its event classes keep their topics, which name this module).
    Shop(env=env).close()
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    follower = context.Process(target=follow, args=(environment(2), stop))
    follower.start()
    shop = Shop(env=env)
    carts = [Cart(f"c{n}") for n in range(500)]
    shop.save(*carts)
    locks = [threading.Lock() for _ in carts]
    committed: queue.SimpleQueue[tuple[int, float]] = queue.SimpleQueue()
    latencies: list[float] = []
    done = threading.Event()
    try:
        # The carts' Opened events are not the projection's topics: its tracking passes the first add.
        carts[0].add_item("SKU-0", 1, 100)
        warm_up = shop.save(carts[0])[-1].notification.id
        with psycopg.connect(autocommit=True) as conn:
            deadline = time.perf_counter() + 60
            while True:
                try:
                    if tracked(conn) >= warm_up:
                        break
                except psycopg.errors.UndefinedTable:
                    pass
                if time.perf_counter() > deadline:
                    raise SystemExit("the projection did not start within 60 s")
                time.sleep(0.01)

        # The poller connects before the first append: setting up a connection is not what is measured.
        connected = threading.Event()

        def poll() -> None:
            with psycopg.connect(autocommit=True) as conn:
                tracked(conn)
                connected.set()
                pending: list[tuple[int, float]] = []
                while not done.is_set():
                    # The appends that returned before the read, then the read and its time.
                    while not committed.empty():
                        pending.append(committed.get())
                    passed = tracked(conn)
                    now = time.perf_counter()
                    latencies.extend((now - at) * 1000 for position, at in pending if position <= passed)
                    pending = [(position, at) for position, at in pending if position > passed]
                    time.sleep(0.0005)

        def add(index: int) -> None:
            number = index % len(carts)
            with locks[number]:
                cart = carts[number]
                cart.add_item("SKU-1", 1, 100)
                recordings = shop.save(cart)
                returned = time.perf_counter()
            committed.put((recordings[-1].notification.id, returned))

        poller = threading.Thread(target=poll)
        poller.start()
        if not connected.wait(60):
            raise SystemExit("the poller did not connect within 60 s")
        start = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            for index in range(rate * seconds):
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(add, index)
        deadline = time.perf_counter() + 30
        while len(latencies) < rate * seconds and time.perf_counter() < deadline:
            time.sleep(0.01)
        done.set()
        poller.join()
    finally:
        stop.set()
        follower.join()
    shop.close()
    samples = sorted(latencies)
    if not samples:
        raise SystemExit("no append became visible")
    return {
        # Appends not visible 30 s after the last: counted, not timed (their latency is over 30 s).
        "missing": rate * seconds - len(samples),
        "p50_ms": samples[len(samples) // 2],
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "max_ms": samples[-1],
        "samples": len(samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    a = modes.add_parser("append")
    a.add_argument("--writers", type=int, default=1)
    a.add_argument("--events", type=int, default=3000)
    l = modes.add_parser("live")
    l.add_argument("--rate", type=int, default=200)
    l.add_argument("--seconds", type=int, default=15)
    c = modes.add_parser("catchup")
    c.add_argument("--carts", type=int, default=2000)
    c.add_argument("--events-per-cart", type=int, default=50)
    args = parser.parse_args()
    if args.mode == "append":
        result = append(args.writers, args.events)
    elif args.mode == "live":
        result = live(args.rate, args.seconds)
    else:
        result = catchup(args.carts, args.events_per_cart)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
