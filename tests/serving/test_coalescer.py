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
