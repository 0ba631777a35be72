"""The coalescer: requests that arrive while a batch is scored share the next batch, never
with a request of the same patient or encounter, and each gets its own answer or error."""

from __future__ import annotations

import threading
import time

from readmit.serving.online import Coalescer


def test_waiting_requests_share_a_batch_but_never_a_patient_and_keep_their_own_answers() -> None:
    coalescer = Coalescer(max_rows=8)
    batches: list[list[list[dict]]] = []
    first_started, release = threading.Event(), threading.Event()

    def run(groups: list[list[dict]]) -> list:
        batches.append(groups)
        if len(batches) == 1:
            first_started.set()
            release.wait(10)
        return [ValueError("refused") if g[0]["encounter_id"] == 13 else [{"id": r["encounter_id"]} for r in g]
                for g in groups]

    requests = [[{"encounter_id": 10, "patient_nbr": 1}], [{"encounter_id": 11, "patient_nbr": 2}],
                [{"encounter_id": 12, "patient_nbr": 2}], [{"encounter_id": 13, "patient_nbr": 3}]]
    answers: dict[int, object] = {}

    def ask(i: int) -> None:
        try:
            answers[i] = coalescer.score(requests[i], run)
        except ValueError as exc:
            answers[i] = exc

    threads = [threading.Thread(target=ask, args=(0,))]
    threads[0].start()
    assert first_started.wait(10)
    for i in (1, 2, 3):  # queued while the first batch is scored
        threads.append(threading.Thread(target=ask, args=(i,)))
        threads[-1].start()
    while len(coalescer.pending) < 3:
        threading.Event().wait(0.01)
    release.set()
    for t in threads:
        t.join(10)

    assert batches[0] == [requests[0]]
    joined = [sorted(g[0]["encounter_id"] for g in b) for b in batches[1:]]
    assert sorted(e for b in joined for e in b) == [11, 12, 13]
    assert all(not {11, 12} <= set(b) for b in joined)  # patient 2's two requests never in one batch
    assert answers[0] == [{"id": 10}] and answers[1] == [{"id": 11}] and answers[2] == [{"id": 12}]
    assert isinstance(answers[3], ValueError)


def test_a_request_with_a_run_of_its_own_never_shares_a_batch() -> None:
    """kind=None (a CDS Hooks call scored with its own history) is scored by its own run, alone,
    even when it queues behind a batch beside requests it could otherwise join."""
    coalescer = Coalescer()
    release = threading.Event()
    seen: dict[str, list[list[list[dict]]]] = {"serving": [], "own": []}

    def run(name: str, wait: bool = False):
        def go(groups):
            if wait:
                release.wait(10)
            seen[name].append(groups)
            return [[{"encounter_id": r["encounter_id"], "by": name} for r in g] for g in groups]
        return go

    first = threading.Thread(target=coalescer.score, args=([{"encounter_id": 1, "patient_nbr": 1}], run("serving", True)))
    first.start()
    while not coalescer.busy:
        time.sleep(0.001)
    answers = {}
    own = threading.Thread(target=lambda: answers.update(own=coalescer.score(
        [{"encounter_id": 2, "patient_nbr": 2}], run("own"), kind=None)))
    other = threading.Thread(target=lambda: answers.update(other=coalescer.score(
        [{"encounter_id": 3, "patient_nbr": 3}], run("serving"))))
    own.start()
    other.start()
    while len(coalescer.pending) < 2:
        time.sleep(0.001)
    release.set()
    for t in (first, own, other):
        t.join(10)
    assert answers["own"] == [{"encounter_id": 2, "by": "own"}]
    assert answers["other"] == [{"encounter_id": 3, "by": "serving"}]
    assert all(len(groups) == 1 for groups in seen["own"])


def test_requests_awaiting_on_the_event_loop_share_one_batch_past_any_thread_pool() -> None:
    """score_async: 100 requests queued behind a batch wait on the event loop, not in a thread
    each (a pool of 40 threads capped batches at 39), and are scored in one next batch, each
    with its own answer; a caller that stops waiting leaves the others' answers intact."""
    import asyncio

    coalescer = Coalescer(max_rows=256)
    batches: list[int] = []
    release = threading.Event()

    def run(groups: list[list[dict]]) -> list:
        batches.append(len(groups))
        if len(batches) == 1:
            release.wait(10)
        return [[{"id": r["encounter_id"], "batch": len(batches)} for r in g] for g in groups]

    async def main() -> tuple[list, list]:
        first = asyncio.ensure_future(coalescer.score_async([{"encounter_id": 0, "patient_nbr": 0}], run))
        while not coalescer.busy:
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(coalescer.score_async([{"encounter_id": i, "patient_nbr": i}], run))
                 for i in range(1, 101)]
        while len(coalescer.pending) < 100:
            await asyncio.sleep(0.001)
        later[0].cancel()  # this caller gave up (a request timeout): its job is still scored
        release.set()
        answers = await asyncio.gather(*later[1:])
        return [await first], answers

    first, answers = asyncio.run(main())
    assert batches == [1, 100]
    assert first == [[{"id": 0, "batch": 1}]]
    assert answers == [[{"id": i, "batch": 2}] for i in range(2, 101)]


def test_requests_with_a_context_of_their_own_share_a_batch_each_beside_its_context() -> None:
    """CDS Hooks calls bring their own earlier stays (``context``): queued together they are one
    batch, scored by ``run(groups, contexts)`` with each group beside its own context, and never
    joined with a request without one (nor with one of the same patient)."""
    coalescer = Coalescer()
    release = threading.Event()
    batches: list[tuple[str, list, list | None]] = []

    def hooks(groups, contexts):
        batches.append(("hooks", groups, contexts))
        return [[{"encounter_id": r["encounter_id"], "stays": c} for r in g] for g, c in zip(groups, contexts, strict=True)]

    def serving(groups):
        if not batches:
            release.wait(10)
        batches.append(("serving", groups, None))
        return [[{"encounter_id": r["encounter_id"], "stays": None} for r in g] for g in groups]

    answers: dict[int, object] = {}
    first = threading.Thread(target=coalescer.score, args=([{"encounter_id": 1, "patient_nbr": 1}], serving))
    first.start()
    while not coalescer.busy:
        time.sleep(0.001)
    asks = [(2, 2, ["a"]), (3, 3, ["b", "c"]), (4, 3, ["d"]), (5, 5, None)]  # (encounter, patient, stays)

    def ask(encounter: int, patient: int, stays: list | None) -> None:
        records = [{"encounter_id": encounter, "patient_nbr": patient}]
        answers[encounter] = (coalescer.score(records, serving) if stays is None
                              else coalescer.score(records, hooks, kind="cds-hooks", context=stays))

    threads = []
    for args in asks:
        threads.append(threading.Thread(target=ask, args=args))
        threads[-1].start()
        while len(coalescer.pending) < len(threads):
            time.sleep(0.001)
    release.set()
    for t in (first, *threads):
        t.join(10)

    assert answers[2] == [{"encounter_id": 2, "stays": ["a"]}]
    assert answers[3] == [{"encounter_id": 3, "stays": ["b", "c"]}]
    assert answers[4] == [{"encounter_id": 4, "stays": ["d"]}]
    assert answers[5] == [{"encounter_id": 5, "stays": None}]
    hook_batches = [(g, c) for kind, g, c in batches if kind == "hooks"]
    assert hook_batches[0] == ([[{"encounter_id": 2, "patient_nbr": 2}], [{"encounter_id": 3, "patient_nbr": 3}]],
                               [["a"], ["b", "c"]])  # patient 3's second call waits for the next batch
    assert hook_batches[1] == ([[{"encounter_id": 4, "patient_nbr": 3}]], [["d"]])
    assert all(kind == "serving" for kind, g, _ in batches if any(r["encounter_id"] in (1, 5) for grp in g for r in grp))
