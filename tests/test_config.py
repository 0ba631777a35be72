import json
import warnings
from pathlib import Path

import pytest

from readmit.config import ReadmitConfig, config_schema, load_config, load_settings, parse_config
from readmit.errors import ConfigError, ReadmitInputError

CONFS = Path(__file__).parent / "confs"
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((CONFS / "valid").glob("*.json")), ids=lambda p: p.name)
def test_valid_configs_load(path):
    cfg = load_config(path)
    assert cfg.temporal_splits.train.start_date.year == 1999


def test_shipped_config_equals_the_defaults():
    shipped = json.loads((REPO / "conf" / "model_config.json").read_text())
    assert shipped == ReadmitConfig().to_json_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the shipped file uses no deprecated key
        cfg = load_config(REPO / "conf" / "model_config.json")
    assert cfg.training_config.hyperparameter_tuning.n_iter == 20
    assert cfg.training_config.hyperparameter_tuning.cv_folds == 5
    assert cfg.training_config.algorithms == ["logistic_regression", "random_forest", "xgboost"]
    assert str(cfg.temporal_splits.test.start_date) == "2006-01-01"
    assert str(cfg.temporal_splits.oot.end_date) == "2008-12-31"


def test_the_old_bootstrap_key_is_still_read_with_a_warning_naming_the_new_one():
    from readmit.config import DeprecatedKeyWarning

    old = {"monitoring_config": {"bootstrap_samples": 500, "psi_alert": 0.3}}
    with pytest.warns(DeprecatedKeyWarning, match="monitoring_config.bootstrap_samples is deprecated; read as "
                      "training_config.bootstrap.resamples = 500"):
        cfg = parse_config(old)
    assert cfg.training_config.bootstrap.resamples == 500 and cfg.monitoring_config.psi_alert == 0.3
    assert old == {"monitoring_config": {"bootstrap_samples": 500, "psi_alert": 0.3}}  # the input is not changed
    assert "bootstrap_samples" not in cfg.to_json_dict()["monitoring_config"]
    # a config copied from the old shipped file holds both keys: the new one is what counts
    both = {"monitoring_config": {"bootstrap_samples": 1000}, "training_config": {"bootstrap": {"resamples": 300}}}
    with pytest.warns(DeprecatedKeyWarning, match=r"ignored: training_config.bootstrap.resamples is also given "
                      r"\(300\)"):
        assert parse_config(both).training_config.bootstrap.resamples == 300
    with pytest.warns(DeprecatedKeyWarning), pytest.raises(ConfigError, match="training_config.bootstrap.resamples"):
        parse_config({"monitoring_config": {"bootstrap_samples": 5}})


def test_overlapping_windows_are_rejected_with_their_path():
    with pytest.raises(ConfigError) as exc:
        load_config(CONFS / "invalid" / "overlapping_windows.json")
    assert exc.value.problems == [
        "temporal_splits.test.start_date: must be after train.end_date (2006-01-01 <= 2006-06-30); "
        "windows must be ordered train < test < oot and must not overlap"
    ]
    assert exc.value.exit_code == 2
    assert "overlapping_windows.json" in str(exc.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as exc:
        load_config(CONFS / "invalid" / "many_problems.json")
    problems = "\n".join(exc.value.problems)
    assert "training_config.algorithms.0" in problems and "svm" in problems
    assert "training_config.hyperparameter_tuning.n_iter" in problems
    assert "unknown_section: unknown key" in problems
    assert "temporal_splits.test: start_date 2007-12-31 is after end_date 2006-01-01" in problems
    assert len(exc.value.problems) >= 4


def test_bad_date_names_the_field():
    with pytest.raises(ConfigError) as exc:
        load_config(CONFS / "invalid" / "bad_date.json")
    assert exc.value.problems[0].startswith("temporal_splits.oot.start_date:")


def test_not_json_and_missing_file():
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_config("{nope", source="x.json")
    with pytest.raises(ReadmitInputError, match="config file not found"):
        load_config("/nonexistent/model_config.json")


def test_schema_lists_the_reference_keys():
    props = config_schema()["properties"]
    for key in ("temporal_window_mode", "temporal_splits", "model_config", "training_config",
                "inference_config", "monitoring_config", "data_config"):
        assert key in props


def test_locations_file_then_env_then_flag(tmp_path, monkeypatch):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"data_config": {"datamart_uri": "from-file", "raw_path": "raw-file"},
                               "model_config": {"registry_uri": "reg-file"}}))
    for name in ("READMIT_DATAMART_URI", "DATAMART_BASE_URI", "READMIT_REGISTRY_URI", "READMIT_RAW",
                 "READMIT_CONFIG", "MODEL_CONFIG_S3_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # relative locations are made absolute against the current directory

    def here(*names: str) -> tuple[str, ...]:
        return tuple(str(tmp_path / n) for n in names)

    s = load_settings(str(cfg))
    assert (s.datamart_uri, s.registry_uri, s.raw_path) == here("from-file", "reg-file", "raw-file")

    monkeypatch.setenv("DATAMART_BASE_URI", "from-alias")  # the reference project's name
    assert load_settings(str(cfg)).datamart_uri == str(tmp_path / "from-alias")
    monkeypatch.setenv("READMIT_DATAMART_URI", "from-env")
    monkeypatch.setenv("READMIT_REGISTRY_URI", "reg-env")
    monkeypatch.setenv("READMIT_RAW", "raw-env")
    s = load_settings(str(cfg))
    assert (s.datamart_uri, s.registry_uri, s.raw_path) == here("from-env", "reg-env", "raw-env")

    s = load_settings(str(cfg), datamart="flag", registry="reg-flag", raw="raw-flag")
    assert (s.datamart_uri, s.registry_uri, s.raw_path) == here("flag", "reg-flag", "raw-flag")

    monkeypatch.setenv("MODEL_CONFIG_S3_URI", str(cfg))  # alias for READMIT_CONFIG
    assert load_settings().config_uri == str(cfg)
    assert load_settings().env()["READMIT_DATAMART_URI"] == str(tmp_path / "from-env")


def test_config_from_s3(s3_uri):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.pipe_file(s3_uri.removeprefix("s3://") + "/model_config.json",
                 (REPO / "conf" / "model_config.json").read_bytes())
    cfg = load_config(s3_uri + "/model_config.json")
    assert cfg.model.model_name == "readmission"


def test_unreadable_config_files_are_input_errors(tmp_path):
    binary = tmp_path / "model_config.json"
    binary.write_bytes(b"\x80\x81 not utf-8")
    with pytest.raises(ConfigError, match="not valid JSON: not UTF-8") as exc:
        load_config(binary)
    assert exc.value.exit_code == 2 and str(binary) in str(exc.value)
    with pytest.raises(ReadmitInputError, match="cannot read the config file") as exc:
        load_config(tmp_path)  # a folder
    assert str(tmp_path) in str(exc.value)
    with pytest.raises(ReadmitInputError) as exc:
        load_config(tmp_path / "missing.json")
    assert "config init" not in str(exc.value)  # no such command; the fix must be one that exists


def test_section_checks_are_reported_alongside_type_errors():
    with pytest.raises(ConfigError) as exc:
        parse_config({
            "training_config": {"algorithms": ["xgboost", "xgboost"]},
            "monitoring_config": {"psi_warning": 0.3, "psi_alert": 0.2},
            "data_config": {"date_derivation": {"start_date": "2009-01-01", "end_date": "2008-12-31"}},
            "model_config_": {},
        })
    assert exc.value.problems == [
        "training_config: algorithms: each algorithm may appear only once",
        "monitoring_config: psi_warning must not exceed psi_alert",
        "data_config.date_derivation: start_date 2009-01-01 is after end_date 2008-12-31",
        "model_config_: unknown key (not allowed; check the spelling); did you mean 'model_config'?",
    ]


def test_booleans_do_not_pass_as_integers_and_training_sections_validate():
    with pytest.raises(ConfigError) as exc:
        parse_config({"training_config": {"hyperparameter_tuning": {"n_iter": True, "cv_folds": False},
                                          "calibration": {"method": "platt"}, "selection": {"window": "train"}}})
    problems = "\n".join(exc.value.problems)
    assert "training_config.hyperparameter_tuning.n_iter" in problems
    assert "training_config.hyperparameter_tuning.cv_folds" in problems
    assert "training_config.calibration.method" in problems and "training_config.selection.window" in problems
    cfg = parse_config({})
    assert cfg.training_config.hyperparameter_tuning.cv_strategy == "group"
    assert cfg.training_config.calibration.method == "isotonic" and cfg.training_config.selection.window == "test"


def test_duplicate_keys_are_refused_with_their_paths(tmp_path):
    # JSON parsers keep the last of two equal keys: a config that says two things must not load.
    path = tmp_path / "dup.json"
    path.write_text(
        '{"model_config": {"random_state": 1},\n'
        ' "training_config": {"hyperparameter_tuning": {"n_iter": 5, "cv_folds": 3, "n_iter": 50}},\n'
        ' "model_config": {"model_name": "x", "model_name": "y"}}'
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.problems == [
        "model_config: duplicate key (given 2 times; only the last would count): keep one",
        "model_config.model_name: duplicate key (given 2 times; only the last would count): keep one",
        "training_config.hyperparameter_tuning.n_iter: duplicate key (given 2 times; only the last "
        "would count): keep one",
    ]
    assert str(path) in str(exc.value)


def test_s3_waits_set_in_the_environment_go_to_step_processes(monkeypatch):
    monkeypatch.setenv("READMIT_S3_READ_TIMEOUT", "7")
    monkeypatch.delenv("READMIT_S3_MAX_ATTEMPTS", raising=False)
    env = load_settings().env()
    assert env["READMIT_S3_READ_TIMEOUT"] == "7" and "READMIT_S3_MAX_ATTEMPTS" not in env


def test_relative_default_roots_are_resolved_once_at_load(tmp_path, monkeypatch):
    for name in ("READMIT_DATAMART_URI", "DATAMART_BASE_URI", "READMIT_REGISTRY_URI", "READMIT_RAW",
                 "READMIT_CONFIG", "MODEL_CONFIG_S3_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no conf/model_config.json here: the built-in defaults
    s = load_settings()
    assert s.datamart_uri == str(tmp_path / "datamart") and s.registry_uri == str(tmp_path / "model_registry")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # a worker in another directory gets the same folders
    assert s.env()["READMIT_REGISTRY_URI"] == str(tmp_path / "model_registry")
    monkeypatch.setenv("HOME", str(tmp_path))
    s = load_settings(datamart="~/dm", registry="s3://bucket/reg", raw="file://raw.csv")
    assert s.datamart_uri == str(tmp_path / "dm") and s.registry_uri == "s3://bucket/reg"
    assert s.raw_path == str(tmp_path / "elsewhere" / "raw.csv")


# -- the reference project's keys (issue 21) -----------------------------------------------------

REFERENCE_CONFIG = CONFS / "reference" / "model_config.json"


def test_the_reference_projects_own_config_is_accepted_and_honoured(caplog, monkeypatch):
    monkeypatch.setattr("readmit.config._WARNED", set())  # warnings are once per file and process
    cfg = load_config(REFERENCE_CONFIG)
    assert cfg.model.registry_uri == "s3://diab-readmit-123456-model-registry/models"  # bucket + prefix
    tc = cfg.training_config
    assert tc.algorithms == ["logistic_regression", "random_forest", "xgboost"]  # enabled_algorithms
    assert tc.hyperparameter_tuning.method == "random_search" and tc.hyperparameter_tuning.cv_folds == 5
    assert (tc.threshold.rule, tc.threshold.value) == ("fixed", 0.5)  # prediction_threshold
    assert cfg.monitoring_config.min_auc == 0.70 and cfg.monitoring_config.psi_warning == 0.1
    assert cfg.temporal_splits.oot.description.startswith("Out-of-Time window")
    # one warning line per key whose meaning readmit deliberately does not follow, naming it
    warned = sorted(r.getMessage().split(": ")[2] for r in caplog.records if r.levelname == "WARNING")
    assert all(r.getMessage().startswith(f"warning: {REFERENCE_CONFIG}: ") for r in caplog.records)
    assert warned == ["model_config.experiment_name", "model_config.test_size",
                      "monitoring_config.minimum_performance_threshold.accuracy",
                      "training_config.class_weight", "training_config.feature_importance_threshold",
                      "training_config.feature_selection"]
    class_weight = next(r.getMessage() for r in caplog.records if "class_weight" in r.getMessage())
    assert "without class weights" in class_weight and "probabilities" in class_weight


def test_every_key_of_the_reference_file_is_accounted_for():
    from readmit.config import translate_reference

    data = json.loads(REFERENCE_CONFIG.read_text())
    native, notes, problems = translate_reference(data)
    assert problems == []
    native_keys = set(ReadmitConfig.model_fields) | {"model_config"}

    def leaves(node, path=""):
        for key, value in node.items():
            if isinstance(value, dict) and key not in ("enabled_algorithms", "minimum_performance_threshold"):
                yield from leaves(value, f"{path}{key}.")
            elif isinstance(value, dict):
                yield from (f"{path}{key}.{k}" if key == "minimum_performance_threshold" else f"{path}{key}"
                            for k in value)
            else:
                yield f"{path}{key}"

    noted = {n.key for n in notes}
    for key in dict.fromkeys(leaves(data)):
        kept = key.split(".")[0] in native_keys and _native(native, key)
        assert key in noted or kept, f"{key}: neither readmit's own key nor translated"


def _native(native: dict, key: str) -> bool:
    node = native
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_the_seeds_change_algorithms_example_validates():
    cfg = parse_config({"training_config": {"algorithms": ["xgboost"], "hyperparameter_tuning": True}})
    assert cfg.training_config.algorithms == ["xgboost"]
    assert cfg.training_config.hyperparameter_tuning == parse_config({}).training_config.hyperparameter_tuning
    off = parse_config({"training_config": {"hyperparameter_tuning": False}, "model_config": {"cv_folds": 3}})
    assert off.training_config.hyperparameter_tuning.method == "none"
    assert off.training_config.hyperparameter_tuning.cv_folds == 3


def test_enabled_algorithms_filters_the_list_and_checks_names():
    cfg = parse_config({"training_config": {"enabled_algorithms": {"xgboost": False, "random_forest": True}}})
    assert cfg.training_config.algorithms == ["logistic_regression", "random_forest"]
    with pytest.raises(ConfigError) as exc:
        parse_config({"training_config": {"enabled_algorithms": {"xgbost": True}}})
    assert exc.value.problems == [
        "training_config.enabled_algorithms.xgbost: unknown algorithm (known: logistic_regression, random_forest, "
        "xgboost); did you mean 'xgboost'?"]


def test_a_reference_key_and_readmits_own_that_disagree_are_refused():
    with pytest.raises(ConfigError) as exc:
        parse_config({"model_config": {"model_registry_bucket": "b", "registry_uri": "./elsewhere", "cv_folds": 4},
                      "training_config": {"hyperparameter_tuning": {"cv_folds": 3}},
                      "inference_config": {"output_format": "csv"},
                      "monitoring_config": {"performance_metrics": ["auc_rock"]}})
    problems = "\n".join(exc.value.problems)
    assert "model_config.model_registry_bucket: gives 's3://b' but model_config.registry_uri says './elsewhere'" in problems
    assert "model_config.cv_folds: gives 4 but training_config.hyperparameter_tuning.cv_folds says 3" in problems
    assert "inference_config.output_format: readmit writes parquet only (got 'csv')" in problems
    assert "'auc_rock' is not a metric readmit records" in problems and "did you mean 'auc_roc'?" in problems


def test_a_typo_of_a_real_key_still_fails_with_the_nearest_key():
    with pytest.raises(ConfigError) as exc:
        parse_config({"training_config": {"algoritms": ["xgboost"], "class_weigth": "balanced"},
                      "monitoring_config": {"drift_treshold": 0.2},
                      "temporal_splits": {"train": {"start_date": "1999-01-01", "end_date": "2005-12-31",
                                                    "descripton": "x"}}})
    assert sorted(exc.value.problems) == [
        "monitoring_config.drift_treshold: unknown key (not allowed; check the spelling); did you mean "
        "'drift_threshold'?",
        "temporal_splits.train.descripton: unknown key (not allowed; check the spelling); did you mean "
        "'description'?",
        "training_config.algoritms: unknown key (not allowed; check the spelling); did you mean 'algorithms'?",
        "training_config.class_weigth: unknown key (not allowed; check the spelling); did you mean "
        "'class_weight'?",
    ]


def test_a_fixed_threshold_needs_its_value():
    with pytest.raises(ConfigError) as exc:
        parse_config({"training_config": {"threshold": {"rule": "fixed"}}})
    assert exc.value.problems == ["training_config.threshold: rule 'fixed' needs value (the probability cut-off, "
                                  "e.g. 0.5)"]
