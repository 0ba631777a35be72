"""The pipeline graph, written once: every step, what it depends on, which steps are gates.

Every runner walks these graphs and calls a step the same way, by id, through :func:`run_step`:
``readmit run`` (:mod:`readmit.pipeline.runner`, on this machine), the Airflow DAGs
(:mod:`readmit.orchestration.airflow_dags`, one task per step) and a container
(``readmit step run STEP_ID``). A new step is one :class:`Step` in a graph below; a new algorithm
is a record in :mod:`readmit.training.algorithms` (the ``train`` step runs once per configured
algorithm), see ``docs/architecture.md``.

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
  ``gold/model_predictions``, then ``trigger_monitoring`` starts ``monitoring`` on the months
  just scored. Monthly in Airflow; by default the latest gold month. Both ``training`` and
  ``inference`` also bring the history store of ``readmit serve`` up to date with silver (after
  the gold gate).
- ``monitoring``: after inference (which triggers it), each month: a gate (the month has predictions), then the
  monitoring run (drift, performance, a keep/watch/retrain decision); a retrain decision
  triggers ``training`` when ``monitoring_config.auto_retrain`` is set.

Reading this module imports no layer: a step names its function by a dotted path, imported when
the step runs, so Airflow's DAG parser stays light.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from readmit.config import Settings, resolve_windows
from readmit.errors import ReadmitInputError
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
    months_from: str | None = None  # with triggers: the triggered run gets the months this step's result lists

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
        Step(id="train", func="readmit.pipeline.register.train_algorithm", depends_on=("check_single_source",),
             per_algorithm=True, heavy=True,
             doc="Tune {algorithm} (hyperparameter_tuning: random search or none, cross-validated on "
                 "the training window), "
                 "evaluate on the test and out-of-time windows, register model, metadata, model card "
                 "and the reference profile monitoring compares with."),
        Step(id="compare_models", func="readmit.training.compare.compare_models", depends_on=("train",),
             doc="Compare the latest registered model of every configured algorithm (highest "
                 "ROC-AUC on training_config.selection.window wins: test by default, out-of-time "
                 "for the reference project's rule) and write `models/<model_name>/latest_model_comparison.json` "
                 "with the recommended one and the reason."),
        Step(id="promote", func="readmit.governance.promote.promote_step", depends_on=("compare_models",),
             doc="Score the recommended model and the champion afresh on governance_config's evaluation "
                 "window; the recommended model becomes champion only if every written rule holds (never "
                 "forced here), otherwise it becomes the challenger. The decision is written to "
                 "`models/<model_name>/decisions/`."),
        Step(id="build_history_store", func="readmit.serving.history.history_store_step",
             depends_on=("check_gold_data_exists",),
             doc="Build the history store of `readmit serve` (the history inputs of every silver encounter, "
                 "per patient: `history/encounters.sqlite` under the datamart, or Redis) when it is missing "
                 "or stale, so the service counts the same earlier encounters as gold."),
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
        Step(id="trigger_monitoring", func="readmit.pipeline.runner.monitor_months", depends_on=("predict",),
             triggers="monitoring", months_from="predict",
             doc="Start `diab_monitoring` on the months `predict` scored (drift, performance, decision)."),
        Step(id="refresh_history_store", func="readmit.serving.history.history_store_step",
             depends_on=("check_inference_gold",),
             doc="Bring the history store of `readmit serve` up to date with silver (rebuilt only when "
                 "a silver month was added or changed since it was built)."),
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
        Step(id="trigger_training", func="readmit.pipeline.runner.retrain", depends_on=("check_retrain_needed",),
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
    to the steps that work on months, not to a gate that reads the latest record. Relative
    windows are resolved here, when the step runs (an Airflow task), unless the settings carry them.
    """
    given = {k: v for k, v in params.items() if v is not None and step.accepts(k)}
    return step.resolve()(resolve_windows(settings), **step.params, **given)


def summarize(result: Any) -> Any:
    """A JSON-safe view of a step's result (for XCom, ``--json`` and container logs)."""
    if hasattr(result, "as_dict"):
        result = result.as_dict()
    elif isinstance(result, list | tuple):
        result = [r.as_dict() if hasattr(r, "as_dict") else r for r in result]
    return jsonable(result)

