"""The pipeline graph: its shape, running one step by id, and the local runner."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from itertools import pairwise

import pytest

from readmit import pipeline
from readmit.config import ReadmitConfig, Settings, parse_config
from readmit.errors import ReadmitInputError
from readmit.pipeline import (
    GRAPHS,
    Graph,
    Step,
    find_step,
    graph_steps,
    run_graphs,
    run_step,
    runner,
    summarize,
)

GATES = ["check_model_config", "check_gold_data_exists", "check_sufficient_training_data",
         "check_temporal_leakage", "check_single_source"]


def settings_for(algorithms=("logistic_regression", "random_forest", "xgboost"), **data) -> Settings:
    cfg = parse_config({"training_config": {"algorithms": list(algorithms)}, "data_config": data})
    return Settings(config=cfg, config_uri=None, raw_path=None, datamart_uri="dm", registry_uri="reg")


def test_training_graph_is_gates_then_one_training_per_algorithm_then_compare():
    steps = {s.id: s for s in graph_steps("training", settings_for())}
    assert list(steps) == [*GATES, "train_logistic_regression", "train_random_forest", "train_xgboost",
                           "compare_models", "promote"]
    for earlier, later in pairwise(GATES):
        assert steps[later].depends_on == (earlier,)
    assert all(steps[g].gate for g in GATES)
    trains = [s for s in steps.values() if s.per_algorithm]
    assert all(s.depends_on == ("check_single_source",) and s.heavy and not s.gate for s in trains)
    assert [s.params["algorithm"] for s in trains] == ["logistic_regression", "random_forest", "xgboost"]
    assert steps["compare_models"].depends_on == tuple(s.id for s in trains)
    assert "xgboost" in steps["train_xgboost"].doc and "{algorithm}" not in steps["train_xgboost"].doc
    assert steps["promote"].depends_on == ("compare_models",) and not steps["promote"].params  # never forced


def test_the_configured_algorithms_decide_the_training_steps():
    ids = [s.id for s in graph_steps("training", settings_for(["xgboost"]))]
    assert ids == [*GATES, "train_xgboost", "compare_models", "promote"]


def test_medallion_graph_is_one_step_per_layer_with_the_config_month_range():
    steps = graph_steps("medallion", settings_for())
    assert [(s.id, s.depends_on, s.params["layers"]) for s in steps] == [
        ("bronze", (), ("bronze",)), ("silver", ("bronze",), ("silver",)), ("gold", ("silver",), ("gold",))
    ]
    s = settings_for(date_derivation={"start_date": "2001-03-05", "end_date": "2004-11-30"})
    assert GRAPHS["medallion"].runtime_params(s) == {"start_month": "2001-03", "end_month": "2004-11"}
    assert GRAPHS["training"].runtime_params(s) == {}


def test_inference_graph_is_two_gates_then_predict_then_monitoring_on_the_latest_month_by_default():
    steps = graph_steps("inference", settings_for())
    assert [(s.id, s.depends_on, s.gate) for s in steps] == [
        ("check_champion", (), True), ("check_inference_gold", ("check_champion",), True),
        ("predict", ("check_inference_gold",), False), ("trigger_monitoring", ("predict",), False)]
    assert (steps[-1].triggers, steps[-1].months_from) == ("monitoring", "predict")
    assert GRAPHS[steps[-1].triggers].dag_id == "diab_monitoring"
    graph = GRAPHS["inference"]
    assert graph.dag_id == "diab_inference" and graph.schedule == "@monthly"
    assert graph.runtime_params(settings_for()) == {"start_month": "", "end_month": ""}


def test_trigger_monitoring_outside_airflow_runs_the_monitoring_graph_on_the_months(tmp_path):
    from dataclasses import replace

    settings = replace(settings_for(), datamart_uri=str(tmp_path / "dm"), registry_uri=str(tmp_path / "reg"))
    outcomes = run_step("trigger_monitoring", settings, start_month="2008-03", end_month="2008-04")
    assert [(o["step"], o["status"]) for o in outcomes] == [
        ("check_predictions_exist", "failed"), ("monitor", "skipped"), ("check_retrain_needed", "skipped"),
        ("trigger_training", "skipped")]
    assert "2008-03" in outcomes[0]["result"]["reason"]
    # An empty range (the inference graph's default) is the monitoring graph's: the data's last month.
    assert "2008-12" in run_step("trigger_monitoring", settings, start_month="", end_month="")[0]["result"]["reason"]


def test_step_ids_are_unique_across_graphs_and_every_function_resolves():
    s = settings_for()
    ids = [step.id for name in GRAPHS for step in graph_steps(name, s)]
    assert len(ids) == len(set(ids))
    for name in GRAPHS:
        for step in graph_steps(name, s):
            assert callable(step.resolve()), step.id
            assert step.doc, step.id


def test_gate_order_matches_the_gates_module():
    from readmit.training import gates

    assert [g.__name__ for g in gates.GATES] == GATES
    assert [s.id for s in pipeline.get_graph("training").steps if s.gate] == GATES


def test_run_step_calls_the_function_with_fixed_and_runtime_params(monkeypatch):
    calls = []
    import readmit.data.medallion as medallion

    monkeypatch.setattr(medallion, "run_medallion", lambda settings, **kw: calls.append(kw) or "ok")
    s = settings_for()
    assert run_step("silver", s, start_month="2001-01", end_month=None) == "ok"
    assert calls == [{"layers": ("silver",), "start_month": "2001-01"}]


def test_unknown_step_names_the_known_ones():
    with pytest.raises(ReadmitInputError) as err:
        find_step("train_catboost", settings_for(["xgboost"]))
    assert "train_xgboost" in str(err.value) and "readmit step list" in str(err.value)


@dataclass
class FakeCheck:
    name: str
    passed: bool
    reason: str = ""
    details: dict = field(default_factory=dict)

    def as_dict(self):
        return {"name": self.name, "passed": self.passed, "reason": self.reason, "details": self.details}


LOG: list[str] = []


def fake_work(settings, *, tag, algorithm=None, progress=None, start_month=None):
    LOG.append(f"{tag}:{start_month}")
    if progress:
        progress(tag, "partition", "2001-01")
    return {"tag": tag, "pid": os.getpid()}


def fake_gate(settings, *, passed):
    LOG.append(f"gate:{passed}")
    return FakeCheck("fake_gate", passed, "because")


def _fake_graphs(monkeypatch, gate_passes: bool):
    LOG.clear()
    first = Graph("fake_data", "fake_data", month_range=True, steps=(
        Step("load", fake_work, params={"tag": "load"}, doc="d"),
    ))
    second = Graph("fake_train", "fake_train", steps=(
        Step("gate", fake_gate, gate=True, params={"passed": gate_passes}, doc="d"),
        Step("fit", fake_work, depends_on=("gate",), per_algorithm=True, params={"tag": "fit"}, doc="d"),
        Step("compare", fake_work, depends_on=("fit",), params={"tag": "compare"}, doc="d"),
    ))
    monkeypatch.setitem(pipeline.GRAPHS, "fake_data", first)
    monkeypatch.setitem(pipeline.GRAPHS, "fake_train", second)


class Recorder(pipeline.Observer):
    def __init__(self):
        self.events = []

    def started(self, step):
        self.events.append(("start", step.id))

    def finished(self, outcome):
        self.events.append((outcome.status, outcome.step.id))

    def progress(self, step):
        return lambda text: self.events.append(("progress", text))


def test_local_runner_walks_the_graphs_in_dependency_order(monkeypatch):
    _fake_graphs(monkeypatch, gate_passes=True)
    rec = Recorder()
    outcomes = run_graphs(settings_for(["xgboost", "random_forest"]), ["fake_data", "fake_train"],
                          params={"start_month": "2001-01"}, observer=rec)
    assert [(o.step.id, o.status) for o in outcomes] == [
        ("load", "done"), ("gate", "done"), ("fit_xgboost", "done"), ("fit_random_forest", "done"),
        ("compare", "done"),
    ]
    # the month range goes to the graph that takes it, not to the training graph
    assert LOG == ["load:2001-01", "gate:True", "fit:None", "fit:None", "compare:None"]
    assert ("progress", "load 2001-01") in rec.events  # the step's latest detail, with its id
    assert not [e for e in rec.events if e[0] == "progress" and e[1].startswith("gate")]


def test_a_failed_gate_stops_everything_after_it(monkeypatch):
    _fake_graphs(monkeypatch, gate_passes=False)
    outcomes = run_graphs(settings_for(["xgboost"]), ["fake_data", "fake_train"])
    assert [(o.step.id, o.status) for o in outcomes] == [
        ("load", "done"), ("gate", "failed"), ("fit_xgboost", "skipped"), ("compare", "skipped"),
    ]
    assert LOG == ["load:None", "gate:False"]
    assert outcomes[1].as_dict()["result"] == {"name": "fake_gate", "passed": False, "reason": "because",
                                               "details": {}}


@pytest.mark.slow
def test_parallel_steps_run_as_readmit_step_run_processes(tmp_path):
    # Each training step in its own `readmit step run` process, with the settings as environment
    # variables; a failure there comes back with the child's own message and exit code class.
    s = Settings(config=ReadmitConfig(), config_uri=None, raw_path=None,
                 datamart_uri=str(tmp_path / "empty"), registry_uri=str(tmp_path / "registry"))
    trains = [x for x in graph_steps("training", s) if x.per_algorithm][:2]
    with pytest.raises(ReadmitInputError) as err:
        list(runner._run_ready(trains, s, {}, True, pipeline.Observer()))
    assert "failed in its own process (exit 2)" in str(err.value)
    assert str(tmp_path / "empty") in str(err.value).replace("\n", "")
    assert not (tmp_path / "registry").exists()


def test_step_command_is_the_cli_invocation_of_a_step():
    gold = graph_steps("medallion", settings_for())[-1]
    assert pipeline.step_command(gold, {"start_month": "2001-01", "end_month": None}) == [
        "step", "run", "gold", "--start", "2001-01"]


def test_summarize_makes_results_json_safe():
    from readmit.data.layers import LayerResult

    assert summarize([LayerResult("gold", ["2001-01"], rows_in=3)])[0]["rows_in"] == 3
    assert summarize({"when": ReadmitConfig().temporal_splits.test.start_date}) == {"when": "2006-01-01"}


def test_monitoring_graph_is_gate_monitor_gate_trigger_on_the_last_month():
    steps = graph_steps("monitoring", settings_for())
    assert [(s.id, s.depends_on, s.gate) for s in steps] == [
        ("check_predictions_exist", (), True), ("monitor", ("check_predictions_exist",), False),
        ("check_retrain_needed", ("monitor",), True), ("trigger_training", ("check_retrain_needed",), False)]
    assert steps[-1].triggers == "training" and GRAPHS[steps[-1].triggers].dag_id == "diab_model_training"
    s = settings_for(date_derivation={"start_date": "2001-03-05", "end_date": "2004-11-30"})
    assert GRAPHS["monitoring"].runtime_params(s) == {"start_month": "2004-11", "end_month": "2004-11"}


def test_a_runtime_parameter_goes_only_to_steps_that_take_it():
    taken = []
    step = Step(id="x", func=lambda settings, *, start_month: taken.append(start_month))
    pipeline.call_step(step, settings_for(), start_month="2008-01", end_month="2008-02", progress=None)
    assert taken == ["2008-01"]


def test_registering_a_model_writes_its_metadata_profile_and_card(make_settings, tmp_path):
    """pipeline.train_algorithm is the one registration: the version comes with everything
    monitoring and the report read, not patched up later."""
    from readmit.monitoring.profile import profile_name
    from readmit.report.cards import card_names

    settings = make_settings(registry=str(tmp_path / "registry"))
    saved = pipeline.train_algorithm(settings, "logistic_regression")
    folder = tmp_path / "registry" / "models" / "readmission"
    version = saved["version"]
    written = {p.name for p in folder.iterdir()}
    expected = {f"logistic_regression_v{version}_metadata.json", profile_name("logistic_regression", version),
                *card_names("logistic_regression", version)}
    assert expected <= written, sorted(written)


def test_only_the_registration_saves_a_model_into_the_registry():
    """No floor below pipeline calls Registry.save, so no caller gets a version without its
    reference profile and model card."""
    import ast
    from pathlib import Path

    src = Path(pipeline.__file__).resolve().parents[1]
    callers = sorted(
        str(path.relative_to(src)) for path in src.rglob("*.py") if path.parent.name != "registry"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "save"
    )
    assert callers == ["pipeline/register.py"]


def test_the_cli_names_resolve_to_the_layers_own_functions():
    from readmit.data.medallion import run_medallion

    assert pipeline.run_medallion is run_medallion
    for name in pipeline.LAYER_FUNCTIONS:
        assert name in pipeline.__all__, name
        assert getattr(pipeline, name).__name__ == name
    with pytest.raises(AttributeError):
        pipeline.not_a_layer_function  # noqa: B018


def test_importing_the_pipeline_imports_no_layer():
    """The graph, the runner and the CLI names load no layer (nor polars) until a step runs."""
    import subprocess
    import sys

    code = ("import sys, readmit.pipeline, readmit.cli.main; print(sorted(m for m in sys.modules if m == 'polars' "
            "or m.split('.')[:2] in [['readmit', r] for r in ('data', 'training', 'serving', 'monitoring', "
            "'governance', 'report', 'registry')]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
