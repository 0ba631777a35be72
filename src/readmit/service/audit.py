"""The audit trail of online predictions: one new object per answered request, never rewritten.

Each record names the request id, the time, the token's name and, per encounter, the model
(algorithm, version, alias, arm), the risk and band, and the patient and encounter ids as
salted hashes (HMAC-SHA256 with the audit salt): no identifier, no token, no clinical value.
The format, where records live and the salt are :mod:`readmit.registry.audit`'s (monitoring
reads the same records); CDS Hooks feedback (accepted, overridden) lives beside them under
``audit/feedback/``. A record that cannot be written fails the request: nothing is
answered unaudited.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from readmit.errors import ReadmitError
from readmit.registry import Registry
from readmit.registry.audit import AUDIT_DIR, FEEDBACK_DIR, SCORED_FIELDS, audit_salt, pseudonym, record_rel

WRITERS = 8  # records written at once from one hand-over (each mostly waits on its fsync)


def _settle_all(outcomes: list[tuple[Any, str | None, BaseException | None]]) -> None:
    for future, where, exc in outcomes:
        if future.done():  # the request stopped waiting (its timeout): the record is written anyway
            continue
        if exc is None:
            future.set_result(where)
        else:
            future.set_exception(exc)


class AuditUnavailable(RuntimeError):
    """The audit record could not be written: the request is not answered (503).

    ``location`` is the audit folder, ``fix`` what to do (free space, make it writable, ...),
    taken from the storage layer's error when it gave one.
    """

    def __init__(self, message: str, *, location: str, fix: str):
        super().__init__(message)
        self.location = location
        self.fix = fix


class AuditLog:
    """Writes the records; ``problem`` holds why the last one failed until one succeeds again
    (``/v1/health/ready`` reports it and probes the folder, so a full disk shows as not ready
    and the service comes back by itself once space returns)."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.salt = audit_salt(registry)
        self.problem: AuditUnavailable | None = None
        self._queued: list[tuple[tuple, Any]] = []  # (write's arguments, the request's future), on the loop
        self._writers: Any = None  # the threads that write one hand-over's records side by side

    @property
    def location(self) -> str:
        return self.registry.storage.uri_of(self.registry.rel(AUDIT_DIR))

    def pseudonym(self, kind: str, value: int) -> str:
        return pseudonym(self.salt, kind, value)

    def write(self, request_id: str, when: datetime, caller: str, endpoint: str,
              rows: list[dict[str, Any]], patients: dict[int, int], extra: dict[str, Any] | None = None) -> str:
        """Create the record of one request; return where it is (``extra``: more fields of the
        record, e.g. a CDS Hooks call's hookInstance and card uuid, never an identifier)."""
        entries = []
        for row in rows:
            entry = {"encounter": self.pseudonym("encounter", row["encounter_id"]),
                     "patient": self.pseudonym("patient", patients[row["encounter_id"]])}
            keys = SCORED_FIELDS if "scored" in row else ("recorded",)
            entry.update({k: row.get(k) for k in keys})
            entries.append(entry)
        record = {"request_id": request_id, "at": when.isoformat(), "token": caller, "endpoint": endpoint,
                  "rows": entries, **(extra or {})}
        return self._create(record_rel(self.registry, f"{when:%Y-%m-%d}", request_id), record)

    async def write_async(self, request_id: str, when: datetime, caller: str, endpoint: str,
                          rows: list[dict[str, Any]], patients: dict[int, int]) -> str:
        """:meth:`write`, awaited on the event loop: returns once this request's record is
        written (fsync) or raises what writing it raised. Records asked for while the loop is
        busy are handed to the thread pool together, in one hop (one per batch of answers, not
        one per request), and written there side by side, each its own object as before."""
        import asyncio

        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queued.append(((request_id, when, caller, endpoint, rows, patients), future))
        if len(self._queued) == 1:
            loop.call_soon(self._hand_over, loop)
        return await future

    def _hand_over(self, loop: Any) -> None:
        queued, self._queued = self._queued, []
        loop.run_in_executor(None, self._write_all, loop, queued)

    def _write_all(self, loop: Any, queued: list[tuple[tuple, Any]]) -> None:
        """In a pool thread: write every queued record (several at once: each waits on its own
        fsync), then settle each request's future in one call back to the loop."""
        def one(args: tuple) -> tuple[str | None, BaseException | None]:
            try:
                return self.write(*args), None
            except BaseException as exc:  # noqa: BLE001 -- handed to that request alone
                return None, exc

        if len(queued) == 1:
            outcomes = [one(queued[0][0])]
        else:
            outcomes = list(self._pool().map(one, [args for args, _ in queued]))
        try:
            loop.call_soon_threadsafe(_settle_all, [(f, *o) for (_, f), o in zip(queued, outcomes, strict=True)])
        except RuntimeError:  # the loop closed meanwhile (shutdown): nobody waits for these any more
            pass

    def _pool(self) -> Any:
        if self._writers is None:
            from concurrent.futures import ThreadPoolExecutor

            self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="readmit-audit")
        return self._writers

    def write_feedback(self, feedback_id: str, when: datetime, caller: str, record: dict[str, Any]) -> str:
        """Create the record of one CDS Hooks feedback call beside the prediction records."""
        record = {"feedback_id": feedback_id, "at": when.isoformat(), "token": caller, **record}
        return self._create(self.registry.rel(f"{FEEDBACK_DIR}/{when:%Y-%m-%d}/{feedback_id}.json"), record)

    def _create(self, rel: str, record: dict[str, Any]) -> str:
        try:
            self.registry.storage.create_bytes(rel, json.dumps(record, sort_keys=True).encode())
        except Exception as exc:  # a full disk, a read-only folder, S3 unreachable: never answer unaudited
            self.problem = self._unavailable(exc)
            raise self.problem from exc
        self.problem = None
        return self.registry.storage.uri_of(rel)

    def probe(self) -> AuditUnavailable | None:
        """Whether a record can be written now (a small object written and deleted in the audit
        folder); clears ``problem`` when it can."""
        rel = self.registry.rel(f"{AUDIT_DIR}/.tmp-probe-{secrets.token_hex(8)}")
        try:
            self.registry.storage.write_bytes(rel, b"readmit audit probe\n")
            self.registry.storage.delete(rel)
        except Exception as exc:
            self.problem = self._unavailable(exc)
            return self.problem
        self.problem = None
        return None

    def _unavailable(self, exc: Exception) -> AuditUnavailable:
        """The refusal for ``exc``: the storage layer's words (no space left, permission denied,
        endpoint down) and fix when it has them, never the record's content."""
        if isinstance(exc, ReadmitError):
            cause, fix = exc.message, exc.fix or "make the audit folder writable"
        else:
            cause, fix = type(exc).__name__, "make the audit folder writable, then retry"
        return AuditUnavailable(f"the audit record could not be written: {cause}", location=self.location,
                                fix=f"{fix}; until then every scoring request is refused (503), "
                                    "nothing is scored unaudited")
