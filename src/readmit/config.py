"""The configuration: typed, strict models of ``conf/model_config.json`` and where things live.

The file keeps the reference project's keys (``temporal_window_mode``, ``temporal_splits``,
``model_config``, ``training_config``, ``inference_config``, ``monitoring_config``) and adds
``governance_config`` and ``data_config``. Unknown keys are errors; every problem is reported at once with its JSON path.

Locations are resolved in three layers, the later winning: the config file, an environment
variable, a CLI flag (see :func:`load_settings`).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from readmit.errors import ConfigError, ReadmitInputError

DEFAULT_CONFIG_PATH = "conf/model_config.json"
# The algorithms' names, in the order they train: the one list readmit.training.algorithms.ALGORITHMS
# is built on (and checked against), kept here because the config cannot import training.
KNOWN_ALGORITHMS = ("logistic_regression", "random_forest", "xgboost")
Algorithm = Literal[KNOWN_ALGORITHMS]
# A model name is one folder under ``{registry_uri}/models/``: never "." or "..", never a path.
MODEL_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    start_date: date
    end_date: date


class TemporalSplits(_Strict):
    train: Window = Window(start_date=date(1999, 1, 1), end_date=date(2005, 12, 31))
    test: Window = Window(start_date=date(2006, 1, 1), end_date=date(2007, 12, 31))
    oot: Window = Window(start_date=date(2008, 1, 1), end_date=date(2008, 12, 31))


def model_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a model name (one folder under ``models/``), or None when it can."""
    if isinstance(name, str) and re.fullmatch(MODEL_NAME_PATTERN, name) and not set(name) <= {"."}:
        return None
    return (f"{name!r} is not a plain folder name: use letters, digits, '_', '-' or '.', starting "
            "with a letter or digit (no '/', no '..')")


class ModelSection(_Strict):
    model_name: str = Field("readmission", description="One folder under {registry_uri}/models/.")
    registry_uri: str = "./model_registry"
    # the label the models predict; readmit.training.split.TARGETS maps it to its gold column
    target: Literal["readmitted_within_30_days"] = "readmitted_within_30_days"
    random_state: int = 42
    require_signature: bool = Field(False, description=(
        "Refuse registry versions that are not signed with READMIT_REGISTRY_KEY (HMAC-SHA256); "
        "see the README's Security section."))

    @field_validator("model_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        problem = model_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class HyperparameterTuning(_Strict):
    """How each algorithm is tuned. ``method`` names the searcher (``random_search``:
    RandomizedSearchCV drawing ``n_iter`` candidates from the search space); ``scoring`` is the
    scikit-learn scorer the search ranks candidates by; ``cv_strategy`` builds the folds (``group``: patients never split across
    fitting and validation; ``time``: expanding window by date; ``stratified``: rows at random)."""

    method: Literal["random_search"] = "random_search"
    n_iter: StrictInt = Field(20, ge=1)
    cv_folds: StrictInt = Field(5, ge=2)
    scoring: Literal["roc_auc", "average_precision", "neg_brier_score", "neg_log_loss"] = "roc_auc"
    cv_strategy: Literal["stratified", "group", "time"] = "group"
    n_jobs: StrictInt = -1


class CalibrationSection(_Strict):
    """How the tuned model's scores become probabilities: ``isotonic``, ``sigmoid`` (Platt) or
    ``none``, fitted on the cross-fitted scores (grouped folds) of the last ``recent_months``
    months of the training window (0: the whole window); never on test or out-of-time."""

    method: Literal["isotonic", "sigmoid", "none"] = "isotonic"
    recent_months: int = Field(24, ge=0)


class SelectionSection(_Strict):
    """Which window the comparison recommends on: ``test`` (the out-of-time window stays a
    holdout) or ``oot`` (the reference project's rule, labelled as such)."""

    window: Literal["test", "oot"] = "test"


class BootstrapSection(_Strict):
    """The patient bootstrap of every interval readmit reports: ``resamples`` draws of patients
    (not rows) for training's confidence intervals of ROC-AUC and Brier (at ``level``) and for the
    A/B report's 95% intervals of the differences (it read ``monitoring_config.bootstrap_samples``
    before, a key still accepted: see :data:`DEPRECATED_KEYS`)."""

    resamples: StrictInt = Field(300, ge=20, le=10000)
    level: float = Field(0.95, gt=0.5, lt=1)


class ThresholdSection(_Strict):
    rule: Literal["best_f1", "target_recall"] = "best_f1"
    target_recall: float = Field(0.5, gt=0, lt=1)


class TrainingSection(_Strict):
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(KNOWN_ALGORITHMS), min_length=1)
    hyperparameter_tuning: HyperparameterTuning = HyperparameterTuning()
    search_spaces: dict[Algorithm, dict[str, Any]] = Field(default_factory=dict)
    calibration: CalibrationSection = CalibrationSection()
    selection: SelectionSection = SelectionSection()
    bootstrap: BootstrapSection = BootstrapSection()
    threshold: ThresholdSection = ThresholdSection()
    exclude_death_hospice: bool = True
    min_train_partitions: StrictInt = Field(10, ge=1)
    min_rows_per_window: StrictInt = Field(100, ge=1)
    min_positives_per_window: StrictInt = Field(10, ge=1)
    label_maturity_days: StrictInt = Field(30, ge=0)
    max_rows: StrictInt | None = Field(None, ge=1, description=(
        "At most about this many training-window rows: a larger window is sampled by patient (a stable "
        "hash of patient_nbr, so a patient is wholly in or out; readmit.training.split.sample_patients). "
        "null: no limit."))

    @model_validator(mode="after")
    def _unique_algorithms(self) -> TrainingSection:
        if len(set(self.algorithms)) != len(self.algorithms):
            raise ValueError("algorithms: each algorithm may appear only once")
        return self


class ABTest(_Strict):
    """A/B assignment at scoring time: a stable hash of ``salt`` + patient_nbr into 10,000 buckets."""

    enabled: bool = False
    challenger_share: float = Field(0.1, gt=0, lt=1)
    salt: str = Field("readmit-ab-1", min_length=1)


class RiskBands(_Strict):
    """``risk_band`` of a prediction: risk < cut_points[0] -> labels[0], ..., else labels[-1]."""

    cut_points: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3], min_length=1)
    labels: list[str] = Field(default_factory=lambda: ["low", "moderate", "high", "very_high"])

    @model_validator(mode="after")
    def _consistent(self) -> RiskBands:
        points = self.cut_points
        if any(not 0 < p < 1 for p in points) or any(b <= a for a, b in zip(points, points[1:], strict=False)):
            raise ValueError(f"cut_points must be increasing probabilities strictly between 0 and 1 (got {points})")
        if len(self.labels) != len(points) + 1:
            raise ValueError(f"labels needs {len(points) + 1} names, one more than cut_points (got {len(self.labels)})")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be distinct")
        return self


class InferenceSection(_Strict):
    # The candidate `readmit promote` considers: the comparison's recommended model, or the
    # latest version of `algorithm`.
    model_selection: Literal["recommended", "latest"] = "recommended"
    algorithm: Algorithm | None = None
    ab_test: ABTest = ABTest()
    risk_bands: RiskBands = RiskBands()

    @model_validator(mode="after")
    def _selection(self) -> InferenceSection:
        if self.model_selection == "latest" and self.algorithm is None:
            raise ValueError("model_selection 'latest' needs algorithm (the algorithm whose latest version is the candidate)")
        if self.model_selection == "recommended" and self.algorithm is not None:
            raise ValueError("algorithm applies only to model_selection 'latest'; remove it or set model_selection to 'latest'")
        return self


class LatestMonths(_Strict):
    latest_months: int = Field(ge=1)


class GovernanceSection(_Strict):
    """The written rules `readmit promote` applies before a challenger replaces the champion."""

    # "oot": the configured out-of-time window; {"latest_months": N}: the N latest gold months
    # whose labels are mature (training_config.label_maturity_days).
    evaluation_window: Literal["oot"] | LatestMonths = "oot"
    min_auc_gain: float = Field(0.002, ge=0, lt=1)
    brier_tolerance: float = Field(0.002, ge=0, lt=1)
    subgroup_auc_tolerance: float = Field(0.03, ge=0, lt=1)


class MonitoringSection(_Strict):
    """Drift bands, performance floors and what a monitoring run may do.

    PSI/CSI bands follow Yurdakul & Naranjo (2020, "Statistical properties of the population
    stability index"): below ``psi_warning`` (0.1) stable, up to ``psi_alert`` (0.25) watch,
    above it act.
    """

    psi_warning: float = Field(0.1, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    auc_drop_alert: float = Field(0.05, gt=0)
    min_auc: float = Field(0.6, gt=0, lt=1)
    profile_bins: int = Field(10, ge=2, le=100)
    observed_expected_low: float = Field(0.8, gt=0)
    observed_expected_high: float = Field(1.25, gt=0)
    auto_retrain: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringSection:
        if self.psi_warning > self.psi_alert:
            raise ValueError("psi_warning must not exceed psi_alert")
        if self.observed_expected_low >= self.observed_expected_high:
            raise ValueError("observed_expected_low must be below observed_expected_high")
        return self


class DateDerivation(_Strict):
    method: Literal["encounter_order", "cyclic"] = "encounter_order"
    start_date: date = date(1999, 1, 1)
    end_date: date = date(2008, 12, 31)

    @model_validator(mode="after")
    def _ordered(self) -> DateDerivation:
        if self.start_date > self.end_date:
            raise ValueError(f"start_date {self.start_date} is after end_date {self.end_date}")
        return self


class SparkSection(_Strict):
    """Where ``engine: spark`` runs when ``SPARK_REMOTE`` (Spark Connect) is not set."""

    master: str = "local[*]"
    config: dict[str, str] = {}


class DuckDBSection(_Strict):
    """DuckDB configuration options for ``engine: duckdb`` (e.g. memory_limit, threads, temp_directory)."""

    config: dict[str, str] = {}


class DataSection(_Strict):
    raw_path: str | None = None
    datamart_uri: str = "./datamart"
    date_derivation: DateDerivation = DateDerivation()
    quarantine: bool = False
    # The extract's diagnosis code system (readmit.data.codes): auto decides per file from the
    # codes only one system has; icd9 / icd10 declare it (the other system's codes are bad rows).
    diagnosis_codes: Literal["auto", "icd9", "icd10"] = "auto"
    # A historical extract whose outcomes are all known: a blank readmitted is then a bad row
    # (by default it is an encounter whose outcome is not known yet).
    require_labels: bool = False
    # Training windows whose gold months come from different raw files: "fail" the
    # check_single_source gate, or only "warn" (for a deliberate mix, e.g. a new extract appended).
    mixed_sources: Literal["fail", "warn"] = "fail"
    # Which engine runs silver's cleaning and gold's features and patient history (readmit.data.engines).
    engine: Literal["polars", "duckdb", "spark"] = "polars"
    duckdb: DuckDBSection = DuckDBSection()
    spark: SparkSection = SparkSection()


class DeprecatedKeyWarning(FutureWarning):
    """A config key that is still read but has moved: the message names its new place.

    A FutureWarning, so that it shows by default (a DeprecationWarning is hidden outside
    ``__main__``): the person who reads it is the one who edits the config file."""


# old key -> the key that replaces it: still read, mapped onto the new key, and warned about
DEPRECATED_KEYS = {"monitoring_config.bootstrap_samples": "training_config.bootstrap.resamples"}


def _move_deprecated_keys(data: Any) -> Any:
    """``data`` (never changed itself) with ``monitoring_config.bootstrap_samples`` moved to
    ``training_config.bootstrap.resamples``, the one key for the bootstrap's draws; the new key
    wins when both are given. Warns with a :class:`DeprecatedKeyWarning`."""
    monitoring = data.get("monitoring_config") if isinstance(data, dict) else None
    if not isinstance(monitoring, dict) or "bootstrap_samples" not in monitoring:
        return data
    old, new = next(iter(DEPRECATED_KEYS.items()))
    value = monitoring["bootstrap_samples"]
    data = {**data, "monitoring_config": {k: v for k, v in monitoring.items() if k != "bootstrap_samples"}}
    training = data.get("training_config", {})
    bootstrap = training.get("bootstrap", {}) if isinstance(training, dict) else None
    if not isinstance(bootstrap, dict):  # validation reports the malformed section
        note = "not read, training_config.bootstrap being invalid"
    elif "resamples" in bootstrap:
        kept = bootstrap["resamples"]
        note = f"ignored: {new} is also given ({kept!r}) and is the one used" if kept != value else \
            f"{new} gives the same value"
    else:
        data["training_config"] = {**training, "bootstrap": {**bootstrap, "resamples": value}}
        note = f"read as {new} = {value!r} (training's intervals and the A/B report's share it)"
    warnings.warn(f"{old} is deprecated; {note}. Fix: write {new} instead and delete {old}",
                  DeprecatedKeyWarning, stacklevel=2)
    return data


class ReadmitConfig(_Strict):
    # "absolute": temporal_splits are fixed calendar dates (the reference project's only mode);
    # rows are assigned to a window by snapshot_date (readmit.training.split.window_expr).
    temporal_window_mode: Literal["absolute"] = "absolute"
    temporal_splits: TemporalSplits = TemporalSplits()
    model_config_: ModelSection = Field(ModelSection(), alias="model_config")
    training_config: TrainingSection = TrainingSection()
    inference_config: InferenceSection = InferenceSection()
    monitoring_config: MonitoringSection = MonitoringSection()
    governance_config: GovernanceSection = GovernanceSection()
    data_config: DataSection = DataSection()

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _deprecated_keys(cls, data: Any) -> Any:
        return _move_deprecated_keys(data)

    @property
    def model(self) -> ModelSection:
        return self.model_config_

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def window_problems(splits: TemporalSplits) -> list[str]:
    """Each window has start <= end; windows are ordered train < test < oot and disjoint."""
    problems: list[str] = []
    names = ("train", "test", "oot")
    for name in names:
        w = getattr(splits, name)
        if w.start_date > w.end_date:
            problems.append(
                f"temporal_splits.{name}: start_date {w.start_date} is after end_date {w.end_date}"
            )
    for earlier, later in zip(names, names[1:], strict=False):
        a, b = getattr(splits, earlier), getattr(splits, later)
        if b.start_date <= a.end_date:
            problems.append(
                f"temporal_splits.{later}.start_date: must be after {earlier}.end_date "
                f"({b.start_date} <= {a.end_date}); windows must be ordered train < test < oot "
                "and must not overlap"
            )
    return problems


def semantic_problems(cfg: ReadmitConfig) -> list[str]:
    """Checks across sections that types alone cannot express (section-level ones are validators)."""
    return window_problems(cfg.temporal_splits)


def _format_pydantic(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not allowed; check the spelling)"
        elif err["type"] == "value_error":  # a section's own cross-field check
            msg = err["msg"].removeprefix("Value error, ")
        else:
            msg = err["msg"]
            if "input" in err and err["type"] not in ("missing",):
                msg += f" (got {err['input']!r})"
        problems.append(f"{path}: {msg}")
    return problems


class _KeyCounter(dict):
    """A JSON object that remembers the keys it saw more than once (JSON keeps only the last)."""

    def __init__(self, pairs: list[tuple[str, Any]]):
        super().__init__(pairs)
        keys = [k for k, _ in pairs]
        self.repeated = {k: keys.count(k) for k in dict.fromkeys(keys) if keys.count(k) > 1}


def _repeated_keys(node: Any, path: str = "") -> list[str]:
    """Every key given more than once in one object, with its JSON path."""
    problems: list[str] = []
    if isinstance(node, dict):
        for key, count in getattr(node, "repeated", {}).items():
            problems.append(f"{path}{key}: duplicate key (given {count} times; only the last would "
                            "count): keep one")
        for key, value in node.items():
            problems += _repeated_keys(value, f"{path}{key}.")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems += _repeated_keys(value, f"{path}{i}.")
    return problems


def parse_config(data: dict[str, Any] | str | bytes, source: str = "<config>") -> ReadmitConfig:
    """Validate a config given as a dict or JSON text; raise ConfigError listing every problem."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data, object_pairs_hook=_KeyCounter)
        except json.JSONDecodeError as exc:
            raise ConfigError(source, [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(source, [f"not valid JSON: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    if not isinstance(data, dict):
        raise ConfigError(source, ["(root): expected a JSON object"])
    repeated = _repeated_keys(data)
    if repeated:
        raise ConfigError(source, repeated)
    try:
        cfg = ReadmitConfig.model_validate(data)
    except ValidationError as exc:
        problems = _format_pydantic(exc)
        # Report window problems too when the windows themselves parse, so one run lists all.
        try:
            problems += window_problems(TemporalSplits.model_validate(data.get("temporal_splits", {})))
        except (ValidationError, AttributeError):
            pass
        raise ConfigError(source, problems) from exc
    problems = semantic_problems(cfg)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def load_config(uri: str | os.PathLike[str]) -> ReadmitConfig:
    """Read and validate a config from a local path or an ``s3://`` URI."""
    from readmit.storage import open_uri

    uri = str(uri)
    try:
        with open_uri(uri, "rb") as fh:
            text = fh.read()
    except FileNotFoundError as exc:
        raise ReadmitInputError(
            "config file not found",
            source=uri,
            fix="pass --config PATH or set READMIT_CONFIG to an existing file (the defaults are "
            "conf/model_config.json; `readmit config schema` lists every key)",
        ) from exc
    except (IsADirectoryError, PermissionError) as exc:
        raise ReadmitInputError(
            f"cannot read the config file ({exc.strerror or type(exc).__name__})",
            source=uri,
            fix="pass the path of a readable JSON file with --config or READMIT_CONFIG",
        ) from exc
    return parse_config(text, source=uri)


def config_schema() -> dict[str, Any]:
    return ReadmitConfig.model_json_schema(by_alias=True)


# -- where things live -------------------------------------------------------------------------

# Each location: environment variables (first wins; reference-project aliases last).
ENV_CONFIG = ("READMIT_CONFIG", "MODEL_CONFIG_S3_URI")
ENV_RAW = ("READMIT_RAW",)
ENV_DATAMART = ("READMIT_DATAMART_URI", "DATAMART_BASE_URI")
ENV_REGISTRY = ("READMIT_REGISTRY_URI",)
# The registry signing key (never logged, never part of Settings or a config file).
ENV_REGISTRY_KEY = ("READMIT_REGISTRY_KEY",)


def from_env(names: tuple[str, ...]) -> str | None:
    """The first non-empty value among the environment variables ``names`` (the one lookup)."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def default_config_uri() -> str:
    """The config to read when none is given: ``READMIT_CONFIG`` (or its alias), else the default path."""
    return from_env(ENV_CONFIG) or DEFAULT_CONFIG_PATH


def absolute_location(uri: str | None) -> str | None:
    """A local path made absolute (``~`` expanded, ``file://`` dropped); URIs such as s3:// unchanged."""
    if uri is None or ("://" in uri and not uri.startswith("file://")):
        return uri
    return os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))


@dataclass(frozen=True)
class Settings:
    """The validated config plus the resolved locations every step uses."""

    config: ReadmitConfig
    config_uri: str | None
    raw_path: str | None
    datamart_uri: str
    registry_uri: str

    def env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in another process."""
        env = {
            "READMIT_DATAMART_URI": self.datamart_uri,
            "READMIT_REGISTRY_URI": self.registry_uri,
        }
        if self.config_uri:
            env["READMIT_CONFIG"] = self.config_uri
        if self.raw_path:
            env["READMIT_RAW"] = self.raw_path
        # The S3 waits (readmit.storage.S3_SETTINGS), when set, go along too.
        env.update({k: v for k, v in os.environ.items() if k.startswith("READMIT_S3_") and v})
        return env


def load_settings(
    config: str | None = None,
    *,
    raw: str | None = None,
    datamart: str | None = None,
    registry: str | None = None,
) -> Settings:
    """Resolve the config and locations: config file < environment variable < CLI flag.

    Without ``--config``/``READMIT_CONFIG`` the default ``conf/model_config.json`` is used when it
    exists, otherwise the built-in defaults (which equal that file).

    Local locations are made absolute here, once, against the current directory: a relative
    default such as ``./datamart`` means the same folder for every later step, whatever the working
    directory of the process (an Airflow worker, a subprocess) that runs it.
    """
    config_uri = config or from_env(ENV_CONFIG)
    if config_uri is None and os.path.exists(DEFAULT_CONFIG_PATH):
        config_uri = DEFAULT_CONFIG_PATH
    cfg = load_config(config_uri) if config_uri else ReadmitConfig()
    return Settings(
        config=cfg,
        config_uri=config_uri,
        raw_path=absolute_location(raw or from_env(ENV_RAW) or cfg.data_config.raw_path),
        datamart_uri=absolute_location(datamart or from_env(ENV_DATAMART) or cfg.data_config.datamart_uri),
        registry_uri=absolute_location(registry or from_env(ENV_REGISTRY) or cfg.model.registry_uri),
    )
