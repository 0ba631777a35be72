"""The configuration: typed, strict models of ``conf/model_config.json`` and where things live.

The file keeps the reference project's keys (``temporal_window_mode``, ``temporal_splits``,
``model_config``, ``training_config``, ``inference_config``, ``monitoring_config``) and adds
``governance_config`` and ``data_config``. Unknown keys are errors; every problem is reported at once with its JSON path.

Locations are resolved in three layers, the later winning: the config file, an environment
variable, a CLI flag (see :func:`load_settings`).
"""

from __future__ import annotations

import dataclasses
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

from readmit.errors import ConfigError, ReadmitError, ReadmitInputError

DEFAULT_CONFIG_PATH = "conf/model_config.json"
# The algorithms' names, in the order they train: the one list readmit.training.algorithms.ALGORITHMS
# is built on (and checked against), kept here because the config cannot import training.
KNOWN_ALGORITHMS = ("logistic_regression", "random_forest", "xgboost")
Algorithm = Literal[KNOWN_ALGORITHMS]
# A model name is one folder under ``{registry_uri}/models/``: never "." or "..", never a path.
MODEL_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


class _Strict(BaseModel):
    # Each field's docstring (the string under it) is its description in `readmit config schema`
    # and in docs/configuration.md (`readmit config docs`).
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Window(_Strict):
    start_date: date
    """First day of the window (inclusive); rows are assigned to a window by snapshot_date."""
    end_date: date
    """Last day of the window (inclusive)."""
    description: str | None = None
    """A note for people: shown by `readmit config validate` and kept in each model's metadata."""


class TemporalSplits(_Strict):
    train: Window = Window(start_date=date(1999, 1, 1), end_date=date(2005, 12, 31),
                           description="fitting, tuning (cross-validation) and calibration")
    """The training window: fitting, tuning (cross-validation) and calibration."""
    test: Window = Window(start_date=date(2006, 1, 1), end_date=date(2007, 12, 31),
                          description="choosing the model and its decision threshold")
    """The test window: choosing the model (selection.window test) and the decision threshold."""
    oot: Window = Window(start_date=date(2008, 1, 1), end_date=date(2008, 12, 31),
                         description="out-of-time holdout: the unseen estimate, and promotion's window")
    """The out-of-time window: the unseen estimate, and the window `readmit promote` scores on by default."""

    def dates(self) -> dict[str, Any]:
        """The windows' dates alone, as JSON: what model metadata records and comparisons compare
        (a description is a note for people; changing it changes no window)."""
        return self.model_dump(mode="json", exclude={name: {"description"} for name in ("train", "test", "oot")})


class RelativeWindows(_Strict):
    """``temporal_window_mode: relative``: windows that move with the data, resolved once per run
    from the label store's months (:func:`resolve_windows`) and recorded in each model's metadata."""

    oot_months: StrictInt = Field(12, ge=1)
    """Out-of-time: the last N months whose labels are mature at the as-of date."""
    test_months: StrictInt = Field(24, ge=1)
    """Test: the M months before out-of-time."""
    train_months: StrictInt = Field(84, ge=1)
    """Train: the K months before test."""
    as_of: date | None = None
    """The as-of date the windows are resolved at (default: the day the run starts; the metadata records the one used)."""


def model_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a model name (one folder under ``models/``), or None when it can."""
    if isinstance(name, str) and re.fullmatch(MODEL_NAME_PATTERN, name) and not set(name) <= {"."}:
        return None
    return (f"{name!r} is not a plain folder name: use letters, digits, '_', '-' or '.', starting "
            "with a letter or digit (no '/', no '..')")


class ModelSection(_Strict):
    model_name: str = Field("readmission", description=(
        "The registry's model name: one folder under {registry_uri}/models/ (in each version's metadata: "
        "registered_model; the metadata's model_name is the algorithm, as in the seed's contract)."))
    registry_uri: str = "./model_registry"
    """Model registry root: a folder or s3://bucket/prefix (READMIT_REGISTRY_URI and --registry override it)."""
    # the label the models predict; readmit.training.split.TARGETS maps it to its gold column
    target: Literal["readmitted_within_30_days"] = "readmitted_within_30_days"
    """The label the models predict (the only one: readmitted within 30 days)."""
    random_state: int = 42
    """Seed of every random draw (folds, searches, bootstrap, sampling): same config and data, same models."""
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

    method: Literal["random_search", "none"] = "random_search"
    """random_search (RandomizedSearchCV over search_spaces) or none (each algorithm's own hyperparameters, scored by cross-validation, no search)."""
    n_iter: StrictInt = Field(20, ge=1)
    """Candidates drawn per algorithm by random_search."""
    cv_folds: StrictInt = Field(5, ge=2)
    """Cross-validation folds of the training window."""
    scoring: Literal["roc_auc", "average_precision", "neg_brier_score", "neg_log_loss"] = "roc_auc"
    """The scikit-learn scorer the search ranks candidates by."""
    cv_strategy: Literal["stratified", "group", "time"] = "group"
    """How folds are built: group (a patient is never in both fitting and validation), time (expanding window by date) or stratified (rows at random)."""
    n_jobs: StrictInt = -1
    """Parallel fits per search (-1: every core)."""


class CalibrationSection(_Strict):
    """How the tuned model's scores become probabilities: ``isotonic``, ``sigmoid`` (Platt) or
    ``none``, fitted on the cross-fitted scores (grouped folds) of the last ``recent_months``
    months of the training window (0: the whole window); never on test or out-of-time."""

    method: Literal["isotonic", "sigmoid", "none"] = "isotonic"
    """isotonic, sigmoid (Platt) or none."""
    recent_months: int = Field(24, ge=0)
    """Fit the calibrator on the last this-many months of the training window (0: the whole window)."""


class SelectionSection(_Strict):
    """Which window the comparison recommends on: ``test`` (the out-of-time window stays a
    holdout) or ``oot`` (the reference project's rule, labelled as such)."""

    window: Literal["test", "oot"] = "test"
    """The window the comparison recommends on: test (out-of-time stays unseen) or oot (the reference project's rule)."""


class BootstrapSection(_Strict):
    """The patient bootstrap of every interval readmit reports: ``resamples`` draws of patients
    (not rows) for training's confidence intervals of ROC-AUC and Brier (at ``level``) and for the
    A/B report's 95% intervals of the differences (it read ``monitoring_config.bootstrap_samples``
    before, a key still accepted: see :data:`DEPRECATED_KEYS`)."""

    resamples: StrictInt = Field(300, ge=20, le=10000)
    """Patient-level bootstrap draws behind each confidence interval."""
    level: float = Field(0.95, gt=0.5, lt=1)
    """Confidence level of the intervals."""


class ThresholdSection(_Strict):
    rule: Literal["best_f1", "target_recall", "fixed"] = "best_f1"
    """How the flag's probability cut-off is set: best_f1 or target_recall (both chosen on the test window), or fixed (value)."""
    target_recall: float = Field(0.5, gt=0, lt=1)
    """For rule target_recall: the highest cut-off whose recall on test reaches this."""
    value: float | None = Field(None, gt=0, lt=1)
    """For rule fixed: the cut-off (the reference project's inference_config.prediction_threshold)."""

    @model_validator(mode="after")
    def _fixed_value(self) -> ThresholdSection:
        if self.rule == "fixed" and self.value is None:
            raise ValueError("rule 'fixed' needs value (the probability cut-off, e.g. 0.5)")
        if self.rule != "fixed" and self.value is not None:
            raise ValueError("value applies only to rule 'fixed'; remove it or set rule to 'fixed'")
        return self


class TrainingSection(_Strict):
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(KNOWN_ALGORITHMS), min_length=1)
    """The algorithms to train and compare, each at most once."""
    hyperparameter_tuning: HyperparameterTuning = HyperparameterTuning()
    """How each algorithm is tuned (true/false: the reference project's switch)."""
    search_spaces: dict[Algorithm, dict[str, Any]] = Field(default_factory=dict)
    """Per algorithm, parameters that replace or add to its default search space: a list of choices, one value, or {distribution, low, high}."""
    calibration: CalibrationSection = CalibrationSection()
    """How the tuned model's scores become probabilities."""
    selection: SelectionSection = SelectionSection()
    """Which window the comparison recommends on."""
    bootstrap: BootstrapSection = BootstrapSection()
    """The patient-bootstrap confidence intervals of ROC-AUC and Brier."""
    threshold: ThresholdSection = ThresholdSection()
    """The decision threshold of the flag and of the hard-label metrics."""
    exclude_death_hospice: bool = True
    """Leave out encounters that end in death or hospice (they cannot be readmitted)."""
    min_train_partitions: StrictInt = Field(10, ge=1)
    """Gate: the fewest monthly gold partitions the train window may have."""
    min_rows_per_window: StrictInt = Field(100, ge=1)
    """Gate: the fewest labelled rows each window may have."""
    min_positives_per_window: StrictInt = Field(10, ge=1)
    """Gate: the fewest positive labels each window may have."""
    label_maturity_days: StrictInt = Field(30, ge=0)
    """Days after a snapshot before its 30-day label counts as known."""
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
    """Score a share of patients with the challenger instead of the champion."""
    challenger_share: float = Field(0.1, gt=0, lt=1)
    """The share of patients (by hash) the challenger scores."""
    salt: str = Field("readmit-ab-1", min_length=1)
    """Salt of the assignment hash; a new salt draws a new split."""


class RiskBands(_Strict):
    """``risk_band`` of a prediction: risk < cut_points[0] -> labels[0], ..., else labels[-1]."""

    cut_points: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3], min_length=1)
    """Increasing probabilities between the bands."""
    labels: list[str] = Field(default_factory=lambda: ["low", "moderate", "high", "very_high"])
    """One name per band: one more than cut_points."""

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
    """The candidate `readmit promote` considers: the comparison's recommended model, or the latest version of algorithm."""
    algorithm: Algorithm | None = None
    """With model_selection latest: the algorithm whose latest version is the candidate."""
    ab_test: ABTest = ABTest()
    """A/B assignment at scoring time."""
    risk_bands: RiskBands = RiskBands()
    """The risk_band column of each prediction."""
    batch_size: StrictInt = Field(100_000, ge=1)
    """Rows scored per chunk (peak memory about 1 GiB at 100,000 with XGBoost); the reference project's key."""

    @model_validator(mode="after")
    def _selection(self) -> InferenceSection:
        if self.model_selection == "latest" and self.algorithm is None:
            raise ValueError("model_selection 'latest' needs algorithm (the algorithm whose latest version is the candidate)")
        if self.model_selection == "recommended" and self.algorithm is not None:
            raise ValueError("algorithm applies only to model_selection 'latest'; remove it or set model_selection to 'latest'")
        return self


class ApiToken(_Strict):
    """A bearer token of `readmit serve`: its sha256 (hex, never the token), a name, scopes."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """Who holds the token: named in the audit records, never the token itself."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """The sha256 of the token, in hex (the config never holds a token)."""
    scopes: list[Literal["score", "record", "admin"]] = Field(default_factory=lambda: ["score"], min_length=1)
    """What it may do: score (/v1/score, /invocations, /v1/model), record (/v1/encounters), admin."""


class CdsIssuer(_Strict):
    """A CDS Client (an EHR) whose JWTs the CDS Hooks service trusts: its ``iss`` and where its JWKS is."""

    iss: str = Field(min_length=1, max_length=512)
    """The issuer, exactly as the JWT's ``iss`` claim says it."""
    jwks_url: str | None = Field(None, pattern=r"^https?://")
    """The URL of the issuer's JWK Set (fetched and cached; refetched once for an unknown ``kid``)."""
    jwks_file: str | None = None
    """A file holding the issuer's JWK Set (agreed out of band); read again for an unknown ``kid``."""

    @model_validator(mode="after")
    def _one_source(self) -> CdsIssuer:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("give exactly one of jwks_url or jwks_file")
        return self


class CdsHooksSection(_Strict):
    """The CDS Hooks 2.0 service of `readmit serve` (/cds-services): who may call, what cards say."""

    enabled: bool = False
    """Serve /cds-services (discovery, the encounter-discharge and patient-view hooks, feedback)."""
    base_url: str | None = Field(None, pattern=r"^https?://[^/?#]+(/[^?#]*)?$")
    """The service's public URL (e.g. https://cds.example.org): a JWT's aud must be it + the path called."""
    issuers: list[CdsIssuer] = Field(default_factory=list)
    """The CDS Clients trusted; a call whose JWT no listed issuer signed gets a bare 401."""
    tenant: str | None = None
    """When set, every JWT must carry this ``tenant`` claim."""
    fhir_servers: list[str] = Field(default_factory=list)
    """FHIR base URLs the service may fetch missing prefetch from (never any other URL a request names)."""
    fhir_timeout_s: float = Field(5.0, gt=0, le=60)
    """Seconds for each FHIR request when completing a prefetch (412 past it)."""
    leeway_s: int = Field(30, ge=0, le=300)
    """Clock skew allowed on a JWT's exp and iat, in seconds."""
    max_token_lifetime_s: int = Field(600, ge=1, le=86_400)
    """The longest exp - iat accepted (the jti of a token is remembered that long)."""
    jwks_cache_s: float = Field(300.0, ge=0)
    """How long a fetched JWK Set is used before it is fetched again."""
    jwks_min_refetch_s: float = Field(10.0, ge=0)
    """An unknown kid refetches the JWK Set (a key rotation) at most this often, so made-up kids cannot flood the issuer."""
    indicators: dict[str, Literal["info", "warning", "critical"]] = Field(
        default_factory=lambda: {"low": "info", "moderate": "warning", "high": "critical", "very_high": "critical"})
    """The card's indicator for each risk band (a band not listed: warning)."""
    follow_up_bands: list[str] = Field(default_factory=list)
    """Risk bands whose card suggests a follow-up visit within 7 days (a FHIR ServiceRequest); []: none."""
    source_label: str = Field("readmit 30-day readmission risk", min_length=1, max_length=100)
    """The label of each card's source."""


class ServeSection(_Strict):
    """`readmit serve`: who may ask (tokens, also READMIT_API_TOKENS) and how much at once."""

    tokens: list[ApiToken] = Field(default_factory=list)
    """Bearer tokens by sha256, with a name and scopes (READMIT_API_TOKENS adds tokens for a run)."""
    max_encounters: int = Field(1000, ge=1, le=100_000)
    """The most encounters in one request (413 past it)."""
    max_body_bytes: int = Field(4_000_000, ge=1024)
    """The largest request body in bytes (413 past it)."""
    reload_seconds: float = Field(2.0, ge=0)
    """How often the service looks whether the champion (or challenger) alias moved; 0: never."""
    rate_per_token: float = Field(1000.0, ge=0)
    """Requests a second each token may make (bursts of as many); past it 429. 0: no limit."""
    request_timeout_s: float = Field(30.0, gt=0)
    """Seconds a scoring or recording request may take before it is answered 504."""
    access_log: bool = False
    """uvicorn's access log: one line per request (client address, method, path, status; no body,
    no token). Off by default: each line is a write on the event loop that costs the service
    throughput under load (docs/benchmarks.md); the service's own log is unchanged."""
    history_backend: Literal["embedded", "redis"] = "embedded"
    """Where the history store lives: a SQLite file under the datamart, or Redis (several replicas)."""
    redis_url: str | None = None
    """The Redis of the history store (READMIT_REDIS_URL overrides it)."""
    cds_hooks: CdsHooksSection = CdsHooksSection()
    """The CDS Hooks 2.0 service an EHR calls at discharge (off by default)."""

    @model_validator(mode="after")
    def _cds_hooks_audience(self) -> ServeSection:
        if self.cds_hooks.enabled and self.cds_hooks.base_url is None:
            raise ValueError("cds_hooks.enabled needs cds_hooks.base_url (the URL EHRs call: the JWTs' aud)")
        return self


class LatestMonths(_Strict):
    latest_months: int = Field(ge=1)
    """The N latest gold months whose labels are mature."""


class GovernanceSection(_Strict):
    """The written rules `readmit promote` applies before a challenger replaces the champion."""

    # "oot": the configured out-of-time window; {"latest_months": N}: the N latest gold months
    # whose labels are mature (training_config.label_maturity_days).
    evaluation_window: Literal["oot"] | LatestMonths = "oot"
    """Where candidate and champion are scored afresh: oot, or {"latest_months": N}."""
    min_auc_gain: float = Field(0.002, ge=0, lt=1)
    """The ROC-AUC a candidate must gain over the champion."""
    brier_tolerance: float = Field(0.002, ge=0, lt=1)
    """How much higher the candidate's Brier score may be than the champion's."""
    subgroup_auc_tolerance: float = Field(0.03, ge=0, lt=1)
    """How much ROC-AUC the candidate may lose in any age, gender or race group."""


class MonitoringSection(_Strict):
    """Drift bands, performance floors and what a monitoring run may do.

    PSI/CSI bands follow Yurdakul & Naranjo (2020, "Statistical properties of the population
    stability index"): below ``psi_warning`` (0.1) stable, up to ``psi_alert`` (0.25) watch,
    above it act.
    """

    psi_warning: float = Field(0.1, gt=0)
    """PSI/CSI above this: watch (the reference project's drift_threshold)."""
    psi_alert: float = Field(0.25, gt=0)
    """PSI/CSI above this: act."""
    auc_drop_alert: float = Field(0.05, gt=0)
    """Alert when ROC-AUC falls this much below the model's own out-of-time ROC-AUC."""
    min_auc: float = Field(0.6, gt=0, lt=1)
    """Alert, and retrain, below this ROC-AUC (the reference's minimum_performance_threshold.auc_roc)."""
    profile_bins: int = Field(10, ge=2, le=100)
    """Quantile bins of each numeric feature in a model's reference profile."""
    observed_expected_low: float = Field(0.8, gt=0)
    """Alert when observed / expected readmissions fall below this."""
    observed_expected_high: float = Field(1.25, gt=0)
    """Alert when observed / expected readmissions rise above this."""
    auto_retrain: bool = False
    """Let a monitoring run trigger training when it finds a retrain is needed."""

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringSection:
        if self.psi_warning > self.psi_alert:
            raise ValueError("psi_warning must not exceed psi_alert")
        if self.observed_expected_low >= self.observed_expected_high:
            raise ValueError("observed_expected_low must be below observed_expected_high")
        return self


class DateDerivation(_Strict):
    method: Literal["encounter_order", "cyclic"] = "encounter_order"
    """How snapshot_date is derived when the input has none: encounter_order (encounters ranked by encounter_id, spread over the range) or cyclic (the reference project's repeated daily dates)."""
    start_date: date = date(1999, 1, 1)
    """First derived date."""
    end_date: date = date(2008, 12, 31)
    """Last derived date."""

    @model_validator(mode="after")
    def _ordered(self) -> DateDerivation:
        if self.start_date > self.end_date:
            raise ValueError(f"start_date {self.start_date} is after end_date {self.end_date}")
        return self


class SparkSection(_Strict):
    """Where ``engine: spark`` runs when ``SPARK_REMOTE`` (Spark Connect) is not set."""

    master: str = "local[*]"
    """Spark master URL (local[*]: every core of this machine)."""
    config: dict[str, str] = {}
    """Spark configuration options (spark.* keys)."""


class DuckDBSection(_Strict):
    """DuckDB configuration options for ``engine: duckdb`` (e.g. memory_limit, threads, temp_directory)."""

    config: dict[str, str] = {}
    """DuckDB settings (memory_limit, threads, temp_directory, ...)."""


class DataSection(_Strict):
    raw_path: str | None = None
    """Raw input: the UCI zip or a CSV, local or s3:// (READMIT_RAW and --raw override it); null: the copy `readmit data fetch` cached."""
    datamart_uri: str = "./datamart"
    """Datamart root: a folder or s3://bucket/prefix (READMIT_DATAMART_URI and --datamart override it)."""
    date_derivation: DateDerivation = DateDerivation()
    """Dates for inputs without a snapshot_date column."""
    quarantine: bool = False
    """Set bad raw rows aside under rejected/ with their reason, instead of refusing the file."""
    diagnosis_codes: Literal["auto", "icd9", "icd10"] = "auto"
    """The extract's diagnosis code system: auto decides per file from the codes only one system has (a file of both is refused); icd9 / icd10 declare it, the other system's codes are then bad rows."""
    require_labels: bool = False
    """A historical extract whose outcomes are all known: a blank readmitted is a bad row (otherwise an encounter whose outcome is not known yet)."""
    # Training windows mixing versions of the data: "fail" the check_single_source gate, or only "warn".
    mixed_sources: Literal["fail", "warn"] = "fail"
    """Training windows that mix versions of the data (a raw file the extract ledger does not know, or months an extract holds left at an earlier version; consecutive extracts are one source): fail the check_single_source gate, or only warn."""
    # Which engine runs silver's cleaning and gold's features and patient history (readmit.data.engines).
    engine: Literal["polars", "duckdb", "spark"] = "polars"
    """The engine of silver and gold: polars, duckdb or spark (same results)."""
    duckdb: DuckDBSection = DuckDBSection()
    """Options of the duckdb engine."""
    spark: SparkSection = SparkSection()
    """Where the spark engine runs."""


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
    temporal_window_mode: Literal["absolute", "relative"] = "absolute"
    """absolute: temporal_splits are fixed calendar dates (the reference project's only mode); relative: resolved from the data by relative_windows."""
    relative_windows: RelativeWindows = RelativeWindows()
    """The relative windows' sizes in months and their as-of date (temporal_window_mode relative)."""
    temporal_splits: TemporalSplits = TemporalSplits()
    """The train, test and out-of-time windows (ordered, not overlapping)."""
    model_config_: ModelSection = Field(ModelSection(), alias="model_config")
    """The model's name, its registry and the seed."""
    training_config: TrainingSection = TrainingSection()
    """What is trained, how it is tuned, calibrated, chosen and gated."""
    inference_config: InferenceSection = InferenceSection()
    """Which model scores, and how predictions are banded and A/B split."""
    monitoring_config: MonitoringSection = MonitoringSection()
    """Drift bands, performance floors and what a monitoring run may do."""
    governance_config: GovernanceSection = GovernanceSection()
    """The written rules `readmit promote` applies."""
    data_config: DataSection = DataSection()
    """Where the data lives and how the medallion builds it."""
    serve_config: ServeSection = ServeSection()
    """`readmit serve`: who may ask, how much at once, where the history store lives."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

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
            msg = "unknown key (not allowed; check the spelling)" + _did_you_mean(
                str(err["loc"][-1]), _keys_at(tuple(err["loc"][:-1])))
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


# -- the reference project's keys (issue 21) ------------------------------------------------------
# The reference project's conf/model_config.json (tests/confs/reference/) is accepted as it is:
# each of its keys that readmit has a meaning for becomes readmit's own key
# (:func:`translate_reference`); each whose meaning readmit deliberately does not follow is dropped
# with one warning saying what readmit does instead and why. Nothing is dropped silently.


@dataclass(frozen=True)
class KeyNote:
    """What one key of a given config file became."""

    key: str  # its JSON path in the file
    became: str  # readmit's key and value, or what readmit does instead
    warning: bool = False  # True: readmit deliberately does not follow the key's meaning


# What readmit measures of every window (so a reference `performance_metrics` list is honoured).
RECORDED_METRICS = ("accuracy", "precision", "recall", "f1", "auc_roc", "pr_auc", "brier", "log_loss", "gini")
_GOLD_TABLES = {"feature_store_path": "gold/feature_store", "label_store_path": "gold/label_store"}
_NOT_FOLLOWED = {
    ("model_config", "experiment_name"):
        "not used: readmit has no experiment tracker; the registry groups versions under "
        "model_config.model_name and each version's metadata records the run's whole config",
    ("model_config", "test_size"):
        "not used: readmit splits by date (temporal_splits), never by a random fraction, so every test "
        "and out-of-time row is later than every training row",
    ("training_config", "feature_importance_threshold"):
        "not used: readmit selects no features (see feature_selection)",
}
_FEATURE_SELECTION = (
    "not used: readmit keeps every gold feature, so every algorithm sees the same inputs and the "
    "serving contract stays one; weak features are handled by each model's regularisation "
    "(search_spaces), and a selection fitted on the training window would bias its CV scores")
_CLASS_WEIGHT = (
    "not used: readmit fits without class weights, because weighted fits make the scores stop being "
    "probabilities (mean risk far above the observed rate); the imbalance is handled by the decision "
    "threshold (training_config.threshold) instead")
_HARD_LABEL_FLOOR = (
    "not used as a floor: {metric} depends on the decision threshold (with 11% positives, flagging "
    "nobody scores 0.89 accuracy); readmit floors ROC-AUC (monitoring_config.min_auc) and calibration "
    "(observed_expected_low/high)")
# The reference keys accepted in each section, for "did you mean" (:func:`_nearest_key`).
REFERENCE_KEYS = {
    "temporal_splits.*": ("description",),
    "model_config": ("feature_store_path", "label_store_path", "model_registry_bucket", "model_registry_prefix",
                     "experiment_name", "test_size", "cv_folds"),
    "training_config": ("enabled_algorithms", "feature_selection", "feature_importance_threshold", "class_weight"),
    "inference_config": ("prediction_threshold", "output_format"),
    "monitoring_config": ("track_drift", "drift_threshold", "performance_metrics", "minimum_performance_threshold"),
}


def _nearest(word: str, choices: Any) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _did_you_mean(word: str, choices: Any) -> str:
    near = _nearest(word, choices)
    return f"; did you mean {near!r}?" if near else ""


def translate_reference(data: dict[str, Any]) -> tuple[dict[str, Any], list[KeyNote], list[str]]:
    """The reference project's keys in ``data`` turned into readmit's own.

    Returns the readmit-native config (a new dict; ``data`` is untouched), one note per reference
    key (what it became), and the problems (a value readmit cannot honour, two keys that disagree).
    """
    native = json.loads(json.dumps(data, default=str))  # a deep copy, plain dicts
    notes: list[KeyNote] = []
    problems: list[str] = []

    def section(name: str) -> dict[str, Any]:
        value = native.get(name)
        return value if isinstance(value, dict) else {}

    def note(key: str, became: str, warning: bool = False) -> None:
        notes.append(KeyNote(key, became, warning))

    def put(target: dict[str, Any], key: str, value: Any, path: str, origin: str) -> None:
        if key in target and target[key] != value:
            problems.append(f"{origin}: gives {value!r} but {path} says {target[key]!r}: keep one of them")
        target[key] = value

    model = section("model_config")
    for key, table in _GOLD_TABLES.items():
        if key in model:
            value = model.pop(key)
            if str(value).strip("/") == table:
                note(f"model_config.{key}", f"readmit's layout: {{data_config.datamart_uri}}/{table}")
            else:
                problems.append(f"model_config.{key}: readmit keeps this table at {{datamart}}/{table}, not "
                                f"{value!r}; put the folder above gold/ in data_config.datamart_uri and drop the key")
    if "model_registry_bucket" in model or "model_registry_prefix" in model:
        bucket, prefix = model.pop("model_registry_bucket", None), model.pop("model_registry_prefix", "")
        if not bucket:
            problems.append("model_config.model_registry_prefix: needs model_registry_bucket (the registry is "
                            "s3://{bucket}/{prefix}); or give model_config.registry_uri instead")
        else:
            uri = f"s3://{str(bucket).strip('/')}" + (f"/{str(prefix).strip('/')}" if str(prefix).strip("/") else "")
            put(model, "registry_uri", uri, "model_config.registry_uri", "model_config.model_registry_bucket")
            note("model_config.model_registry_bucket", f"model_config.registry_uri = {uri}")
            note("model_config.model_registry_prefix", f"model_config.registry_uri = {uri}")
    for (name, key), why in _NOT_FOLLOWED.items():
        if key in section(name):
            section(name).pop(key)
            note(f"{name}.{key}", why, warning=True)

    training = section("training_config")
    tuning = training.get("hyperparameter_tuning")
    if isinstance(tuning, bool):
        training["hyperparameter_tuning"] = {} if tuning else {"method": "none"}
        note("training_config.hyperparameter_tuning",
             "training_config.hyperparameter_tuning.method = "
             + ("random_search (readmit's defaults: n_iter 20, grouped folds)" if tuning else
                "none (each algorithm's own hyperparameters, scored by cross-validation, no search)"))
    if "cv_folds" in model:
        folds = model.pop("cv_folds")
        if "training_config" not in native or not isinstance(native["training_config"], dict):
            native["training_config"] = training = {}
        target = training.setdefault("hyperparameter_tuning", {})
        if isinstance(target, dict):
            put(target, "cv_folds", folds, "training_config.hyperparameter_tuning.cv_folds", "model_config.cv_folds")
        note("model_config.cv_folds", f"training_config.hyperparameter_tuning.cv_folds = {folds}")
    if "enabled_algorithms" in training:
        enabled = training.pop("enabled_algorithms")
        if not isinstance(enabled, dict) or not all(isinstance(v, bool) for v in enabled.values()):
            problems.append("training_config.enabled_algorithms: expected an object of algorithm: true/false "
                            f"(got {enabled!r})")
        else:
            for name in enabled:
                if name not in KNOWN_ALGORITHMS:
                    problems.append(f"training_config.enabled_algorithms.{name}: unknown algorithm (known: "
                                    f"{', '.join(KNOWN_ALGORITHMS)}){_did_you_mean(name, KNOWN_ALGORITHMS)}")
            listed = training.get("algorithms")
            base = listed if isinstance(listed, list) else list(KNOWN_ALGORITHMS)
            chosen = [a for a in base if enabled.get(a, True)]
            if not chosen:
                problems.append("training_config.enabled_algorithms: every algorithm is disabled; enable at least one")
            training["algorithms"] = chosen
            note("training_config.enabled_algorithms", f"training_config.algorithms = {chosen}")
    if "feature_selection" in training:
        if training.pop("feature_selection"):
            note("training_config.feature_selection", _FEATURE_SELECTION, warning=True)
        else:
            note("training_config.feature_selection", "false: readmit's own behaviour (every gold feature is used)")
    if "class_weight" in training:
        weight = training.pop("class_weight")
        if weight in (None, "none", False):
            note("training_config.class_weight", f"{weight!r}: readmit's own behaviour (no class weights)")
        else:
            note("training_config.class_weight", _CLASS_WEIGHT, warning=True)

    inference = section("inference_config")
    if "prediction_threshold" in inference:
        value = inference.pop("prediction_threshold")
        if "training_config" not in native or not isinstance(native["training_config"], dict):
            native["training_config"] = training = {}
        threshold = training.setdefault("threshold", {})
        if isinstance(threshold, dict):
            put(threshold, "rule", "fixed", "training_config.threshold.rule", "inference_config.prediction_threshold")
            put(threshold, "value", value, "training_config.threshold.value", "inference_config.prediction_threshold")
        note("inference_config.prediction_threshold",
             f"training_config.threshold = fixed {value} (the flag and the hard-label metrics use this cut-off)")
    if "output_format" in inference:
        value = inference.pop("output_format")
        if value == "parquet":
            note("inference_config.output_format", "parquet: readmit's only format (gold/model_predictions)")
        else:
            problems.append(f"inference_config.output_format: readmit writes parquet only (got {value!r}); "
                            "set it to \"parquet\" or drop it")

    monitoring = section("monitoring_config")
    if "track_drift" in monitoring:
        if monitoring.pop("track_drift") is False:
            note("monitoring_config.track_drift", "not used: readmit always measures drift (PSI/CSI per "
                 "feature), which the retraining decision needs", warning=True)
        else:
            note("monitoring_config.track_drift", "true: readmit always measures drift (PSI/CSI per feature)")
    if "drift_threshold" in monitoring:
        value = monitoring.pop("drift_threshold")
        put(monitoring, "psi_warning", value, "monitoring_config.psi_warning", "monitoring_config.drift_threshold")
        note("monitoring_config.drift_threshold", f"monitoring_config.psi_warning = {value} (PSI above it: watch; "
             "above psi_alert: act)")
    if "performance_metrics" in monitoring:
        metrics = monitoring.pop("performance_metrics")
        for m in metrics if isinstance(metrics, list) else [metrics]:
            if m not in RECORDED_METRICS:
                problems.append(f"monitoring_config.performance_metrics: {m!r} is not a metric readmit records "
                                f"({', '.join(RECORDED_METRICS)}){_did_you_mean(str(m), RECORDED_METRICS)}")
        note("monitoring_config.performance_metrics",
             f"recorded for every window and month, with {', '.join(RECORDED_METRICS)}")
    if "minimum_performance_threshold" in monitoring:
        floors = monitoring.pop("minimum_performance_threshold")
        if not isinstance(floors, dict):
            problems.append(f"monitoring_config.minimum_performance_threshold: expected an object such as "
                            f'{{"auc_roc": 0.7}} (got {floors!r})')
            floors = {}
        for metric, value in floors.items():
            key = f"monitoring_config.minimum_performance_threshold.{metric}"
            if metric == "auc_roc":
                put(monitoring, "min_auc", value, "monitoring_config.min_auc", key)
                note(key, f"monitoring_config.min_auc = {value}")
            elif metric in RECORDED_METRICS:
                note(key, _HARD_LABEL_FLOOR.format(metric=metric), warning=True)
            else:
                problems.append(f"{key}: not a metric readmit records{_did_you_mean(metric, RECORDED_METRICS)}")
    return native, notes, problems


def reference_warnings(notes: list[KeyNote], source: str) -> None:
    """One warning line per key readmit deliberately does not follow: once per file and process,
    and not again in the step processes `readmit run` starts (they get WARNED_ENV)."""
    import logging

    if os.environ.get(WARNED_ENV) == source:
        return
    log = logging.getLogger("readmit.config")
    for n in notes:
        if n.warning and (source, n.key) not in _WARNED:
            _WARNED.add((source, n.key))
            log.warning("warning: %s: %s: %s", source, n.key, n.became)


_WARNED: set[tuple[str, str]] = set()
WARNED_ENV = "READMIT_CONFIG_WARNED"  # the config file whose warnings the parent process printed


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed in the object at ``loc`` (readmit's and the reference's), for "did you mean"."""
    import typing

    model: Any = ReadmitConfig
    for part in loc:
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        kinds = [a for a in (typing.get_args(field.annotation) or (field.annotation,))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if not kinds:
            return []
        model = kinds[0]
    keys = [f.alias or n for n, f in model.model_fields.items()]
    path = ".".join(map(str, loc))
    if len(loc) == 2 and loc[0] == "temporal_splits":
        path = "temporal_splits.*"
    return keys + list(REFERENCE_KEYS.get(path, ()))


def parse_config(data: dict[str, Any] | str | bytes, source: str = "<config>", *, warn: bool = True) -> ReadmitConfig:
    """Validate a config given as a dict or JSON text; raise ConfigError listing every problem.

    The reference project's keys are translated first (:func:`translate_reference`); with ``warn``
    each one readmit does not follow is logged once as a warning.
    """
    return read_config(data, source, warn=warn)[0]


def read_config(data: dict[str, Any] | str | bytes, source: str = "<config>", *,
                warn: bool = True) -> tuple[ReadmitConfig, dict[str, Any], list[KeyNote]]:
    """:func:`parse_config`, also returning the readmit-native dict and the reference keys' notes."""
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
    data, notes, translated = translate_reference(data)
    try:
        cfg = ReadmitConfig.model_validate(data)
    except ValidationError as exc:
        problems = translated + _format_pydantic(exc)
        # Report window problems too when the windows themselves parse, so one run lists all.
        try:
            problems += window_problems(TemporalSplits.model_validate(data.get("temporal_splits", {})))
        except (ValidationError, AttributeError):
            pass
        raise ConfigError(source, problems) from exc
    problems = translated + semantic_problems(cfg)
    if problems:
        raise ConfigError(source, problems)
    if warn:
        reference_warnings(notes, source)
    return cfg, data, notes


def load_config(uri: str | os.PathLike[str]) -> ReadmitConfig:
    """Read and validate a config from a local path or an ``s3://`` URI."""
    return parse_config(read_config_text(uri), source=str(uri))


def read_config_text(uri: str | os.PathLike[str]) -> bytes:
    """The bytes of a config file (local path or ``s3://`` URI), or a ReadmitInputError saying why not."""
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
    return text


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
    # temporal_window_mode relative: whether temporal_splits are the windows resolved on gold for this
    # run (resolve_windows); loading the settings never resolves them (no storage I/O at load).
    windows_resolved: bool = False

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

    Nothing here reads the datamart or the registry (an Airflow DAG file loads settings at parse
    time): relative windows are resolved by the steps that use them (:func:`resolve_windows`).
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


LABEL_STORE_TABLE = "gold/label_store"  # readmit.data.layers.LABEL_STORE (tests/test_config.py keeps them equal)


def relative_splits(months: list[str], as_of: date, maturity_days: int, rule: RelativeWindows) -> TemporalSplits | None:
    """The windows ``temporal_window_mode: relative`` gives: out-of-time = the last ``oot_months``
    calendar months up to the latest of ``months`` whose labels are mature at ``as_of``, test the
    ``test_months`` before, train the ``train_months`` before that. None when no month is mature."""
    from readmit.months import first_day, is_mature, last_day

    mature = [m for m in months if is_mature(m, as_of, maturity_days)]
    if not mature:
        return None
    end = max(mature)
    index = int(end[:4]) * 12 + int(end[5:]) - 1  # months since year 0

    def month(i: int) -> str:
        return f"{i // 12:04d}-{i % 12 + 1:02d}"

    def window(last: int, size: int, text: str) -> Window:
        return Window(start_date=first_day(month(last - size + 1)), end_date=last_day(month(last)),
                      description=f"{text} (relative: {size} months, as of {as_of})")

    oot_end, test_end = index, index - rule.oot_months
    train_end = test_end - rule.test_months
    return TemporalSplits(train=window(train_end, rule.train_months, "fitting, tuning and calibration"),
                          test=window(test_end, rule.test_months, "choosing the model and its threshold"),
                          oot=window(oot_end, rule.oot_months, "out-of-time holdout"))


def resolve_windows(settings: Settings, as_of: date | None = None) -> Settings:
    """With ``temporal_window_mode: relative``, the settings whose ``temporal_splits`` are the
    windows the rule gives on the label store's months now (:func:`relative_splits`), and whose
    ``relative_windows.as_of`` is the date used (``as_of``, else the config's, else today): every
    step then reads plain dates, and the model metadata records them. Unchanged when the mode is
    absolute, or while gold has no mature month yet (the gates then say what is missing).

    Called by the steps that use the windows (the gates, training, promotion, the report, every
    step a runner or an Airflow task calls), never when settings load: settings resolved once keep
    their windows for the rest of the run (``windows_resolved``), unless ``as_of`` is given."""
    cfg = settings.config
    if cfg.temporal_window_mode != "relative" or (settings.windows_resolved and as_of is None):
        return settings
    from readmit.storage import Storage

    day = as_of or cfg.relative_windows.as_of or date.today()
    try:
        months = Storage(settings.datamart_uri).list_partitions(LABEL_STORE_TABLE)
    except ReadmitError:  # an unreachable datamart is reported by the step that needs it
        return settings
    splits = relative_splits(months, day, cfg.training_config.label_maturity_days, cfg.relative_windows)
    if splits is None:
        return settings
    resolved = cfg.model_copy(update={"temporal_splits": splits,
                                      "relative_windows": cfg.relative_windows.model_copy(update={"as_of": day})})
    return dataclasses.replace(settings, config=resolved, windows_resolved=True)
