"""Engine set-up for the embedded SQLite store.

Why two engines on one file: the job runner writes metrics while the GUI reads them. In WAL mode
readers never block, but a deferred transaction that later writes can fail with SQLITE_BUSY without
waiting. So every write goes through :meth:`Store.write`, which starts with ``BEGIN IMMEDIATE`` and
therefore queues on the busy timeout instead of failing, and reads use plain deferred transactions.

Opening checks the file first when it may be damaged (:mod:`core.db.sessions` says when,
:mod:`core.db.recovery` what happens then): a damaged store is never used and never silently
replaced by an empty one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import paths
from core.db import sessions
from core.db.recovery import (
    DataStoreRecovered,
    RecoveryReport,
    is_corruption,
    move_aside,
    quick_check,
    rebuild_from_run_dirs,
)

BUSY_TIMEOUT_MS = 30_000


def _make_engine(db_file: Path, begin_statement: str) -> Engine:
    engine = create_engine(
        f"sqlite:///{db_file}",
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        pool_pre_ping=False,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from pysqlite so our BEGIN statement is the one used.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin_statement)

    return engine


class Store:
    """One SQLite database file, migrated to the newest schema, with read and write sessions."""

    def __init__(self, db_file: Path) -> None:
        self.db_file = Path(db_file)
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self.write_engine = _make_engine(self.db_file, "BEGIN IMMEDIATE")
        self.read_engine = _make_engine(self.db_file, "BEGIN")
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        self.recovery: RecoveryReport | None = None  # set when this store was rebuilt on opening
        self._marker: sessions.OpenMarker | None = None

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction (BEGIN IMMEDIATE); commits on success, rolls back on error."""
        with self._write_sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only snapshot. Never write through it (use :meth:`write`)."""
        with self._read_sessions() as session:
            try:
                yield session
            finally:
                session.rollback()

    def migrate(self) -> None:
        from core.migrations.runner import upgrade_to_head

        upgrade_to_head(self.write_engine)

    def ensure_defaults(self) -> None:
        """One local user and a "Default" project always exist."""
        from core.db.models import Project, User

        with self.write() as session:
            user = session.scalars(select(User).order_by(User.id).limit(1)).first()
            if user is None:
                user = User(username="local")
                session.add(user)
                session.flush()
            has_project = session.scalars(select(Project.id).limit(1)).first()
            if has_project is None:
                session.add(Project(user_id=user.id, name="Default", description="Created on first start"))

    def dispose(self) -> None:
        self.write_engine.dispose()
        self.read_engine.dispose()
        if self._marker is not None:
            self._marker.remove()  # closed cleanly: no check at the next start
            self._marker = None


_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()


def open_store(db_file: Path | None = None, *, accept_recovery: bool = False) -> Store:
    """Open (once per process and file), check when needed, migrate it and add its default rows.

    A damaged file is moved aside and rebuilt from the run folders (:mod:`core.db.recovery`). The
    caller must tell the user: unless ``accept_recovery`` (the caller then shows ``store.recovery``),
    that first open raises :class:`DataStoreRecovered` with the report; the rebuilt store is kept
    for the next call. Raises :class:`~core.db.sessions.DataStoreError` when the file is damaged but
    another process still has it open (it is not moved then).
    """
    target = Path(db_file) if db_file else paths.db_path()
    target = target.resolve()
    with _stores_lock:
        store = _stores.get(target)
        if store is None:
            store = _open_checked(target)
            _stores[target] = store
            if store.recovery is not None and not accept_recovery:
                raise DataStoreRecovered(store.recovery)
        return store


def _open_checked(target: Path) -> Store:
    """Under the opening guard: check after an unclean shutdown, repair if damaged, register this process."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with sessions.opening_guard(target):
        marker = sessions.OpenMarker(target)
        others = sessions.other_sessions(target, marker.me)
        problem = quick_check(target) if others.unclean else None
        store = None if problem else _try_open(target)
        if store is None:
            store = _recover(target, problem or quick_check(target) or "SQLite reports it as damaged", others)
        sessions.forget(others.dead)
        marker.write()
        store._marker = marker
        return store


def _try_open(target: Path) -> Store | None:
    """The migrated store; None when SQLite says the file is damaged (other errors propagate)."""
    store = Store(target)
    try:
        store.migrate()
        store.ensure_defaults()
    except Exception as exc:
        store.dispose()
        if is_corruption(exc):
            return None
        raise
    return store


def _recover(target: Path, problem: str, others: sessions.OtherSessions) -> Store:
    if others.live:
        users = "; ".join(holder.describe() for holder in others.live)
        raise sessions.DataStoreError(
            f"The database {target} is damaged ({problem}), and {users} still has it open. Close it, then start "
            "again: the damaged file will be moved aside and rebuilt from the run folders."
        )
    report = RecoveryReport(target, problem, move_aside(target), paths.runs_dir())
    store = Store(target)
    store.migrate()
    store.ensure_defaults()
    rebuild_from_run_dirs(store, report.runs_dir, report)
    store.recovery = report
    return store


def close_all_stores() -> None:
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()
