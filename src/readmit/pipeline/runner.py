"""The local runner: ``readmit run`` walks the graphs of :mod:`readmit.pipeline.graph` on this machine.

Steps whose dependencies are done run together, gates stop what follows them, and a step runs
exactly as an Airflow task runs it (:func:`readmit.pipeline.graph.call_step`, or the container
command ``readmit step run STEP_ID`` in a process of its own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

from readmit.config import WARNED_ENV, Settings, resolve_windows
from readmit.errors import ReadmitError, ReadmitInputError
from readmit.pipeline.graph import LOCAL_RUN, Step, call_step, get_graph, graph_steps, step_command, summarize


@dataclass
class Outcome:
    """What happened to one step in a local run."""

    step: Step
    status: str  # "done", "failed" (a gate that did not pass), "skipped" (after a failed gate)
    result: Any = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step.id, "status": self.status, "seconds": round(self.seconds, 2),
                "result": summarize(self.result)}


class Observer:
    """Receives a local run's events (the CLI draws progress bars from them)."""

    def started(self, step: Step) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...

    def progress(self, step: Step) -> Callable[[str], None] | None:
        """Where the step's progress lines go (see :func:`progress_callback`), or None."""
        return None


def progress_callback(step: Step, emit: Callable[[str], None] | None) -> Callable[..., None] | None:
    """A ``progress`` argument for ``step`` that emits ``"{step id} {latest detail}"`` lines.

    The detail is the last thing the step reports: a month (medallion) or a message (training).
    None when there is nowhere to emit or the step's function takes no ``progress``.
    """
    if emit is None or not step.accepts("progress"):
        return None

    def progress(*args: Any, **_: Any) -> None:
        detail = next((str(a) for a in reversed(args) if a is not None), "")
        emit(f"{step.id} {detail}".rstrip())

    return progress


def _timed_call(step: Step, settings: Settings, params: dict[str, Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call_step(step, settings, **params)
    return result, time.perf_counter() - started


def run_graphs(
    settings: Settings,
    names: Iterable[str] = LOCAL_RUN,
    *,
    params: Mapping[str, Any] | None = None,
    parallel: bool = False,
    observer: Observer | None = None,
) -> list[Outcome]:
    """Walk the graphs in order on this machine; stop at the first failed gate.

    Steps whose dependencies are all done run together: each in its own process when
    ``parallel`` (the per-algorithm training steps), otherwise one after another. ``params`` go to the steps of
    graphs that take them (the month range of the medallion). A step that raises stops the run
    (the exception propagates); rerunning is safe because every step overwrites its own output.
    """
    observer = observer or Observer()
    params = dict(params or {})
    outcomes: list[Outcome] = []
    stopped = False
    for name in names:
        graph = get_graph(name)
        if name == "medallion":  # relative windows: resolved again on the gold it builds
            settings = replace(settings, windows_resolved=False)
        else:  # once, for every later graph of the run
            settings = resolve_windows(settings)
        step_params = {k: params.get(k) for k in graph.runtime_params(settings)}
        pending = graph_steps(graph.name, settings)
        done: set[str] = set()
        while pending and not stopped:
            ready = [s for s in pending if set(s.depends_on) <= done]
            pending = [s for s in pending if s not in ready]
            for step, result, seconds in _run_ready(ready, settings, step_params, parallel, observer):
                failed = step.gate and not result.passed
                outcome = Outcome(step, "failed" if failed else "done", result, seconds)
                outcomes.append(outcome)
                observer.finished(outcome)
                stopped = stopped or failed
                done.add(step.id)
        outcomes += [Outcome(s, "skipped") for s in pending]
    return outcomes


def _run_ready(
    steps: list[Step], settings: Settings, params: dict[str, Any], parallel: bool, observer: Observer
) -> Iterator[tuple[Step, Any, float]]:
    """Run steps that are ready, yielding each as it finishes.

    In parallel, every step but a gate gets its own ``readmit step run`` process, the container
    command, with the settings as environment variables; its result comes back as JSON.
    """
    for step in steps:
        observer.started(step)
    apart = [s for s in steps if not s.gate] if parallel else []
    apart = apart if len(apart) > 1 else []
    for step in steps:
        if step not in apart:
            progress = progress_callback(step, observer.progress(step))
            yield step, *_timed_call(step, settings, {**params, "progress": progress})
    if apart:
        with ThreadPoolExecutor(max_workers=len(apart)) as pool:
            futures = {pool.submit(_run_in_subprocess, s, settings, params): s for s in apart}
            for future in as_completed(futures):
                yield futures[future], *future.result()


def _run_in_subprocess(step: Step, settings: Settings, params: dict[str, Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from readmit.cli import main; main()", *step_command(step, params)],
        # the config's warnings were printed by this process; the step's output is JSON alone
        env={**os.environ, **settings.env(), WARNED_ENV: settings.config_uri or ""},
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        error = ReadmitInputError if done.returncode == 2 else ReadmitError
        raise error(f"step {step.id} failed in its own process (exit {done.returncode}):\n"
                    f"{done.stderr.strip()[-3000:]}")
    return json.loads(done.stdout), time.perf_counter() - started


def retrain(settings: Settings) -> list[dict[str, Any]]:
    """Run the training graph on this machine (what ``trigger_training`` does outside Airflow)."""
    return [o.as_dict() for o in run_graphs(settings, ["training"])]


def monitor_months(settings: Settings, start_month: str | None = None,
                   end_month: str | None = None) -> list[dict[str, Any]]:
    """Run the monitoring graph on this machine (what ``trigger_monitoring`` does outside Airflow);
    an empty month means the monitoring graph's default, the data's last month."""
    defaults = get_graph("monitoring").runtime_params(settings)
    months = {"start_month": start_month or defaults["start_month"], "end_month": end_month or defaults["end_month"]}
    return [o.as_dict() for o in run_graphs(settings, ["monitoring"], params=months)]


def default_parallel(settings: Settings) -> bool:
    """Train in parallel only when every algorithm's search can have cores of its own.

    Each search already runs ``n_jobs`` fits at once (all cores by default), so training the
    algorithms side by side only adds contention: on 2 cores, the full UCI data and the default
    search (20 candidates x 5 folds), one after another took 88 s, in parallel 168 s.
    """
    from readmit.runtime import available_cpus, resolve_n_jobs

    tc = settings.config.training_config
    n_jobs = resolve_n_jobs(tc.hyperparameter_tuning.n_jobs)
    return len(tc.algorithms) > 1 and n_jobs * len(tc.algorithms) <= available_cpus()


def preflight(settings: Settings, *, datamart: bool = False, registry: bool = False) -> None:
    """Check that the locations a command will write can be written, before the long work.

    Writes and deletes a probe object in the datamart and/or the registry; raises the storage
    layer's error (missing bucket, refused credentials, read-only folder, a file where the folder
    should be, endpoint down) naming the location and the fix.
    """
    from readmit.storage import Storage

    wanted = (("datamart", datamart, settings.datamart_uri), ("registry", registry, settings.registry_uri))
    for role, check, uri in wanted:
        if not check:
            continue
        try:
            Storage(uri).check_writable()
        except ReadmitError as exc:
            raise type(exc)(
                f"the {role} is not usable (checked before starting; nothing was done): {exc.message}",
                source=exc.source or uri, fix=exc.fix,
            ) from exc
