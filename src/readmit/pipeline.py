"""The pipeline, written once: every step, what it depends on, which steps are gates.

Two runners walk these graphs and nothing else: ``readmit run`` (:func:`run_graphs`, on this
machine) and the Airflow DAGs (:mod:`readmit.orchestration.airflow_dags`, one task per step).
Both execute a step the same way, by id, through :func:`run_step`; so does a container
(``readmit step run STEP_ID``). Adding a step or an algorithm is a change to this file (or to the
config's ``training_config.algorithms``) and nowhere else.

Graphs:

- ``medallion``: bronze -> silver -> gold, one step per layer (each layer is what a user reruns:
  ``readmit medallion --layer silver``). The steps take a month range (``start_month``,
  ``end_month``), by default the config's ``data_config.date_derivation`` range.
- ``training``: five gates in a row (config, gold data, enough training data, no temporal
  leakage, one raw source), then one training step per configured algorithm (in parallel), then the comparison.
  A failed gate stops everything downstream of it. Then ``promote``: the recommended model
  replaces the champion only if the written rules of ``governance_config`` say so (never forced).
- ``inference``: two gates (a champion exists and verifies; the months' gold exists), then
  ``predict``: the champion (and the challenger, under an A/B test) scores gold months into
  ``gold/model_predictions``. Monthly in Airflow; by default the latest gold month.
- ``monitoring``: after inference, each month: a gate (the month has predictions), then the
  monitoring run (drift, performance, a keep/watch/retrain decision); a retrain decision
  triggers ``training`` when ``monitoring_config.auto_retrain`` is set.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

from readmit.config import Settings
from readmit.errors import ReadmitError, ReadmitInputError
from readmit.jsonsafe import jsonable


@dataclass(frozen=True)
class Step:
    """One unit a user would rerun: a function called as ``func(settings, **params)``.

    ``func`` is a callable or a dotted path (``"package.module.function"``), imported only when
    the step runs, so reading the graph never imports pandas, sklearn or xgboost.
    """

    id: str
    func: str | Callable[..., Any]
    depends_on: tuple[str, ...] = ()
    gate: bool = False  # returns a CheckResult; a failed gate stops everything downstream
    per_algorithm: bool = False  # one instance per configured algorithm, id ``{id}_{algorithm}``
    heavy: bool = False  # runs in a container in the ecs/kubernetes executor modes
    doc: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)  # fixed keyword arguments of func
    triggers: str | None = None  # starts this graph: a TriggerDagRunOperator in Airflow, ``func`` locally

    def resolve(self) -> Callable[..., Any]:
        if callable(self.func):
            return self.func
        module, _, name = self.func.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def accepts(self, name: str) -> bool:
        """Whether the step's function takes a keyword argument ``name`` (or any, ``**kwargs``)."""
        parameters = inspect.signature(self.resolve()).parameters
        return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


@dataclass(frozen=True)
class Graph:
    """Steps in dependency order. ``dag_id`` names the Airflow DAG built from it."""

    name: str
    dag_id: str
    steps: tuple[Step, ...]
    doc: str = ""
    month_range: bool = False  # the steps take start_month/end_month ("YYYY-MM")
    latest_month: bool = False  # with month_range: an empty range means the latest gold month
    retries: int = 0  # Airflow retries per task
    schedule: str | None = None  # Airflow schedule (None: triggered by hand or by another system)
    last_month_only: bool = False  # the default range is the data's last month, not all of it

    def runtime_params(self, settings: Settings) -> dict[str, str]:
        """The run-time parameters of this graph with their defaults ("" = the latest gold month)."""
        if not self.month_range:
            return {}
        if self.latest_month:
            return {"start_month": "", "end_month": ""}
        derivation = settings.config.data_config.date_derivation
        end = derivation.end_date.strftime("%Y-%m")
        return {
            "start_month": end if self.last_month_only else derivation.start_date.strftime("%Y-%m"),
            "end_month": end,
        }

    def expand(self, algorithms: Iterable[str]) -> list[Step]:
        """The concrete steps: per-algorithm steps become one step per algorithm.

        A dependency on a per-algorithm step means a dependency on all its instances.
        """
        algorithms = list(algorithms)
        instances: dict[str, list[str]] = {
            s.id: ([f"{s.id}_{a}" for a in algorithms] if s.per_algorithm else [s.id]) for s in self.steps
        }
        concrete: list[Step] = []
        for step in self.steps:
            depends_on = tuple(i for d in step.depends_on for i in instances[d])
            if step.per_algorithm:
                concrete += [
                    replace(step, id=f"{step.id}_{a}", depends_on=depends_on,
                            params={**step.params, "algorithm": a},
                            doc=step.doc.replace("{algorithm}", a))
                    for a in algorithms
                ]
            else:
                concrete.append(replace(step, depends_on=depends_on))
        return concrete


def _layer(layer: str, depends_on: tuple[str, ...], doc: str) -> Step:
    return Step(id=layer, func="readmit.data.medallion.run_medallion", depends_on=depends_on,
                heavy=True, params={"layers": (layer,)}, doc=doc)


MEDALLION = Graph(
    name="medallion",
    dag_id="diab_medallion",
    month_range=True,
    retries=1,
    doc=(
        "Raw UCI encounters -> bronze -> silver -> gold (feature_store, label_store), one monthly "
        "partition at a time. Rerunning a month replaces its partitions. Trigger with conf "
        '`{"start_month": "YYYY-MM", "end_month": "YYYY-MM"}` to rebuild a range.'
    ),
    steps=(
        _layer("bronze", (), "Read the raw file (UCI zip or CSV), derive snapshot dates, write typed "
               "monthly partitions to `bronze/encounters` with lineage columns."),
        _layer("silver", ("bronze",), "Clean bronze: canonical categories, explicit `Missing`, "
               "ICD-9 codes as strings, duplicates removed; writes `silver/encounters`."),
        _layer("gold", ("silver",), "Features (patient history: earlier encounters by date and id) and "
               "the 30-day readmission label; writes `gold/feature_store` and `gold/label_store`, and "
               "rebuilds the later gold months whose silver history inputs changed (a backfill)."),
    ),
)


def _gate(name: str, depends_on: tuple[str, ...], doc: str) -> Step:
    return Step(id=name, func=f"readmit.training.gates.{name}", depends_on=depends_on, gate=True,
                doc=doc + "\n\nA gate: when it fails, every task after it is skipped (not failed).")


TRAINING = Graph(
    name="training",
    dag_id="diab_model_training",
    retries=0,  # a training run takes long; a human looks before rerunning
    doc=(
        "Prerequisite gates, then one tuned model per configured algorithm (in parallel), each "
        "registered with its metadata, then a comparison that recommends one. Run "
        "`diab_medallion` first."
    ),
    steps=(
        _gate("check_model_config", (), "The config file is valid (every problem listed with its "
              "path) and so are the configured search spaces."),
        _gate("check_gold_data_exists", ("check_model_config",), "The gold feature_store and "
              "label_store have partitions in the datamart, for the same months."),
        _gate("check_sufficient_training_data", ("check_gold_data_exists",), "Enough monthly "
              "partitions in the train window, and rows and positives in every window "
              "(training_config.min_*)."),
        _gate("check_temporal_leakage", ("check_sufficient_training_data",), "Windows ordered and "
              "disjoint, no row dated outside its window, labels mature (label_maturity_days)."),
        _gate("check_single_source", ("check_temporal_leakage",), "Every gold month of the windows "
              "comes from the same raw file (its recorded sha256); a mix fails, or warns with "
              'data_config.mixed_sources: "warn".'),
        Step(id="train", func="readmit.pipeline.train_algorithm", depends_on=("check_single_source",),
             per_algorithm=True, heavy=True,
             doc="Tune {algorithm} (random search, cross-validated ROC-AUC on the training window), "
                 "evaluate on the test and out-of-time windows, register model, metadata, model card "
                 "and the reference profile monitoring compares with."),
        Step(id="compare_models", func="readmit.training.compare.compare_models", depends_on=("train",),
             doc="Compare the latest registered model of every configured algorithm (highest "
                 "out-of-time ROC-AUC wins) and write `models/<model_name>/latest_model_comparison.json` "
                 "with the recommended one and the reason."),
        Step(id="promote", func="readmit.governance.promote.promote_step", depends_on=("compare_models",),
             doc="Score the recommended model and the champion afresh on governance_config's evaluation "
                 "window; the recommended model becomes champion only if every written rule holds (never "
                 "forced here), otherwise it becomes the challenger. The decision is written to "
                 "`models/<model_name>/decisions/`."),
    ),
)

INFERENCE = Graph(
    name="inference",
    dag_id="diab_inference",
    month_range=True,
    latest_month=True,
    schedule="@monthly",
    retries=1,
    doc=(
        "Batch scoring with the champion model: gates (a champion exists and verifies; the month's "
        "gold exists), then predictions with reason codes into `gold/model_predictions`, one partition "
        'per month. By default the latest gold month; trigger with conf `{"start_month": "YYYY-MM", '
        '"end_month": "YYYY-MM"}` to score a range. Run diab_medallion and diab_model_training first.'
    ),
    steps=(
        Step(id="check_champion", func="readmit.serving.gates.check_champion", gate=True,
             doc="A champion alias is set and its artifact matches its sha256.\n\nA gate: when it fails "
                 "(no champion yet), the scoring is skipped, not failed."),
        Step(id="check_inference_gold", func="readmit.serving.gates.check_inference_gold", gate=True,
             depends_on=("check_champion",),
             doc="Every month to score has a gold/feature_store partition.\n\nA gate: when it fails, the "
                 "scoring is skipped, not failed."),
        Step(id="predict", func="readmit.serving.predict.predict_step", depends_on=("check_inference_gold",),
             heavy=True,
             doc="Score the months with the champion (champion and challenger under an enabled "
                 "inference_config.ab_test): risk, flag, risk band, top reasons; each month's partition of "
                 "`gold/model_predictions` is replaced atomically."),
    ),
)

MONITORING = Graph(
    name="monitoring",
    dag_id="diab_monitoring",
    month_range=True,
    last_month_only=True,
    retries=1,
    doc=(
        "Monitor the champion on a month range (default: the data's last month), after inference: "
        "PSI of the score, CSI per feature, observed performance where labels are mature and "
        "estimated performance where not, and a keep / watch / retrain decision (the monitor task's "
        "return value, in its log and in `monitoring/<model_name>/latest_monitoring.json`). Trigger "
        'with conf `{"start_month": "YYYY-MM", "end_month": "YYYY-MM"}`.'
    ),
    steps=(
        Step(id="check_predictions_exist", func="readmit.monitoring.gates.check_predictions_exist", gate=True,
             doc="Every month of the range has predictions in `gold/model_predictions` (`readmit predict`)."
                 "\n\nA gate: when it fails, every task after it is skipped (not failed)."),
        Step(id="monitor", func="readmit.monitoring.monitor.monitor_step", depends_on=("check_predictions_exist",),
             doc="Drift, performance and the decision for the range; writes the monitoring record."),
        Step(id="check_retrain_needed", func="readmit.monitoring.gates.check_retrain_needed", gate=True,
             depends_on=("monitor",),
             doc="The decision is retrain and `monitoring_config.auto_retrain` is set; otherwise the "
                 "trigger is skipped."),
        Step(id="trigger_training", func="readmit.pipeline.retrain", depends_on=("check_retrain_needed",),
             triggers="training",
             doc="Start `diab_model_training` (gates, training, comparison) with the data as it is now."),
    ),
)

GRAPHS: dict[str, Graph] = {g.name: g for g in (MEDALLION, TRAINING, INFERENCE, MONITORING)}
LOCAL_RUN = ("medallion", "training")  # what ``readmit run`` walks, in order


def get_graph(name: str) -> Graph:
    try:
        return GRAPHS[name]
    except KeyError:
        raise ReadmitInputError(f"unknown graph {name!r}", fix=f"use one of: {', '.join(GRAPHS)}") from None


def graph_steps(name: str, settings: Settings) -> list[Step]:
    """The concrete steps of graph ``name`` for the algorithms configured in ``settings``."""
    return get_graph(name).expand(settings.config.training_config.algorithms)


def find_step(step_id: str, settings: Settings) -> tuple[Graph, Step]:
    for graph in GRAPHS.values():
        for step in graph_steps(graph.name, settings):
            if step.id == step_id:
                return graph, step
    known = [s.id for name in GRAPHS for s in graph_steps(name, settings)]
    raise ReadmitInputError(
        f"unknown step {step_id!r}",
        fix=f"use one of: {', '.join(known)} (`readmit step list`); a train_* step needs its "
            "algorithm in training_config.algorithms",
    )


# The ``readmit step run`` option of each run-time parameter.
CLI_FLAGS = {"start_month": "--start", "end_month": "--end"}


def step_command(step: Step, params: Mapping[str, Any]) -> list[str]:
    """The ``readmit`` arguments that run ``step`` with ``params`` (a container's command)."""
    command = ["step", "run", step.id]
    for name, value in params.items():
        if value is not None:
            command += [CLI_FLAGS[name], str(value)]
    return command


def run_step(step_id: str, settings: Settings, **params: Any) -> Any:
    """Run one step by id: what every Airflow task, every container and ``readmit run`` call.

    ``params`` are run-time arguments (``start_month``/``end_month`` for the medallion steps,
    ``progress`` callbacks); a value of None means "not given" and is dropped.
    """
    return call_step(find_step(step_id, settings)[1], settings, **params)


def call_step(step: Step, settings: Settings, **params: Any) -> Any:
    """Call a concrete step's function with its fixed params and the given run-time ones.

    A run-time parameter the function does not take is not passed: a graph's month range goes
    to the steps that work on months, not to a gate that reads the latest record.
    """
    given = {k: v for k, v in params.items() if v is not None and step.accepts(k)}
    return step.resolve()(settings, **step.params, **given)


def summarize(result: Any) -> Any:
    """A JSON-safe view of a step's result (for XCom, ``--json`` and container logs)."""
    if hasattr(result, "as_dict"):
        result = result.as_dict()
    elif isinstance(result, list | tuple):
        result = [r.as_dict() if hasattr(r, "as_dict") else r for r in result]
    return jsonable(result)


# -- the local runner ---------------------------------------------------------------------------


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
        env={**os.environ, **settings.env()}, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        error = ReadmitInputError if done.returncode == 2 else ReadmitError
        raise error(f"step {step.id} failed in its own process (exit {done.returncode}):\n"
                    f"{done.stderr.strip()[-3000:]}")
    return json.loads(done.stdout), time.perf_counter() - started


# -- what the command line calls ----------------------------------------------------------------
# The CLI imports only this module (plus config and errors): each command is one function here,
# importing the layer that does the work when it runs, so ``readmit --help`` stays fast.


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


def fetch_data(cache_dir: Any = None, *, force: bool = False) -> Any:
    """Download (or reuse) the official UCI zip; return its local path."""
    from readmit.data.fetch import fetch_uci

    return fetch_uci(cache_dir, force=force)


def synthesize(out: Any, *, rows: int, seed: int, with_snapshot: bool) -> Any:
    """Write a synthetic CSV with the UCI schema; return its path."""
    from readmit.data.synth import write_synthetic

    return write_synthetic(out, rows=rows, seed=seed, with_snapshot=with_snapshot)


def check_extract(settings: Settings, path: str, *, diagnosis_codes: str | None = None,
                  require_labels: bool | None = None) -> Any:
    """Validate one extract against the input contract, writing nothing (``readmit data check``);
    dates are derived as ``data_config.date_derivation`` says when the file has none."""
    from readmit.data.extract import check_extract as check

    data = settings.config.data_config
    derivation = data.date_derivation
    return check(path, derivation=derivation.method, start=derivation.start_date, end=derivation.end_date,
                 diagnosis_codes=diagnosis_codes or data.diagnosis_codes,
                 require_labels=data.require_labels if require_labels is None else require_labels)


def medallion(settings: Settings, layer: str = "all", *, cascade: bool = True, **kwargs: Any) -> list[Any]:
    """Build the given medallion layer(s) (``bronze|silver|gold|all``) for a month range.

    ``cascade`` (default) lets gold rebuild the later months whose history inputs changed;
    without it such a build refuses instead of leaving them stale.
    """
    from readmit.data.medallion import resolve_layers, run_medallion

    return run_medallion(settings, layers=resolve_layers(layer), cascade=cascade, **kwargs)


def gate_names() -> list[str]:
    """The pre-training gates' names, in the order they run."""
    return [s.id.removeprefix("check_") for s in TRAINING.steps if s.gate]


def check(settings: Settings, *, as_of: Any = None) -> list[Any]:
    """Run every pre-training gate (all of them, even after a failure); return their results."""
    from readmit.training.gates import run_checks

    return run_checks(settings, as_of=as_of)


def check_invalid_config(error: Any) -> list[Any]:
    """The gates' results when the config itself does not load: the first fails, the rest do not run."""
    from readmit.checks import CheckResult

    first, *rest = gate_names()
    return [CheckResult(first, False, " ".join(str(error).split()), {"problems": getattr(error, "problems", [])})] + [
        CheckResult(name, False, "not run: the config is invalid", {"skipped": True}) for name in rest
    ]


def train(settings: Settings, algorithms: Iterable[str] | None = None, *, progress: Any = None) -> list[dict[str, Any]]:
    """Tune, evaluate and register the given (default: every configured) algorithms.

    Each registered version also gets its monitoring reference profile and its model card.
    """
    from readmit.training import train_algorithm as train_one
    from readmit.training.split import load_gold

    data = load_gold(settings, progress=progress)
    chosen = list(algorithms or settings.config.training_config.algorithms)
    saved = [train_one(settings, name, progress=progress, data=data) for name in chosen]
    _after_registration(settings, saved, data)
    return saved


def train_algorithm(settings: Settings, algorithm: str, *, progress: Any = None) -> dict[str, Any]:
    """The ``train`` step: train and register one algorithm, then store its profile and model card.

    Training sits below the monitoring and report floors, so what they add is written here.
    """
    from readmit.training import train_algorithm as train_one
    from readmit.training.split import load_gold

    data = load_gold(settings, progress=progress)
    saved = train_one(settings, algorithm, progress=progress, data=data)
    _after_registration(settings, [saved], data)
    return saved


def _after_registration(settings: Settings, saved: list[dict[str, Any]], data: Any) -> None:
    """What each new version gets beside its artifact: a reference profile and a model card."""
    from readmit.monitoring.profile import store_training_profiles
    from readmit.report import write_cards

    store_training_profiles(settings, saved, data)
    write_cards(settings, saved)


def report(settings: Settings, *, progress: Any = None) -> dict[str, Any]:
    """Write the HTML report under ``{registry_uri}/reports/``; return its location, size and seconds."""
    from readmit.report import build_report

    return build_report(settings, progress=progress)


def model_card(settings: Settings, version: str) -> dict[str, str]:
    """A registered version's model card (markdown), written first if it has none yet."""
    from readmit.report import model_card as card

    return card(settings, version)


def retrain(settings: Settings) -> list[dict[str, Any]]:
    """Run the training graph on this machine (what ``trigger_training`` does outside Airflow)."""
    return [o.as_dict() for o in run_graphs(settings, ["training"])]


def monitor(settings: Settings, *, start_month: str, end_month: str, as_of: Any = None,
            alias: str = "champion", progress: Any = None) -> Any:
    """Monitor the model an alias points at over a month range; write and return the record
    (a :class:`readmit.monitoring.record.MonitoringRecord`)."""
    from readmit.monitoring.monitor import run_monitoring

    return run_monitoring(settings, start_month=start_month, end_month=end_month, as_of=as_of, alias=alias,
                          progress=progress)


def ab_report(settings: Settings, *, start_month: str | None = None, end_month: str | None = None,
              as_of: Any = None, progress: Any = None) -> dict[str, Any]:
    """Champion vs challenger on mature labels, with patient-level bootstrap intervals; write it."""
    from readmit.monitoring.ab import ab_report as report

    return report(settings, start_month=start_month, end_month=end_month, as_of=as_of, progress=progress)


def compare(settings: Settings) -> dict[str, Any]:
    """Compare the latest model of each configured algorithm; write and return the comparison."""
    from readmit.training.compare import compare_models

    return compare_models(settings)


def promote(settings: Settings, *, candidate: str | None = None, force: bool = False,
            reason: str | None = None) -> dict[str, Any]:
    """Apply the promotion rules to the candidate (default: the recommended model); return the decision."""
    from readmit.governance.promote import promote as run_promotion

    return run_promotion(settings, candidate=candidate, force=force, reason=reason)


def rollback(settings: Settings, *, reason: str | None = None) -> dict[str, Any]:
    """Restore the previous champion."""
    from readmit.governance.promote import rollback as run_rollback

    return run_rollback(settings, reason=reason)


def predict(settings: Settings, start_month: str | None = None, end_month: str | None = None, *,
            alias: str | None = None, version: str | None = None, engine: str | None = None,
            progress: Any = None) -> dict[str, Any]:
    """Score gold months into gold/model_predictions (on Spark with engine ``spark``); return the summary."""
    from readmit.serving.predict import predict as run_predict

    return run_predict(settings, start_month, end_month, alias=alias, version=version, engine=engine,
                       progress=progress).as_dict()


def aliases(settings: Settings) -> dict[str, Any]:
    """Each alias (champion, challenger) and the version it points at, or None."""
    from readmit.registry.aliases import get_aliases

    return get_aliases(open_registry(settings))


def alias_history(settings: Settings) -> list[dict[str, Any]]:
    """Every alias event (set, promotion, rollback), oldest first."""
    from readmit.registry.aliases import alias_history as history

    return history(open_registry(settings))


def open_registry(settings: Settings) -> Any:
    """The model registry the settings point at."""
    from readmit.registry import Registry

    return Registry.for_settings(settings)


def registry_gc(settings: Settings, *, older_than_seconds: float = 3600.0, dry_run: bool = False) -> dict[str, Any]:
    """Remove stale temporaries from the registry and list orphaned files (never a complete version)."""
    return open_registry(settings).gc(older_than_seconds=older_than_seconds, dry_run=dry_run)


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
