"""The monitoring record: what one run found, as one typed object.

:func:`readmit.monitoring.monitor.run_monitoring` builds it, writes it as JSON
(``monitoring_{YYYYMMDDTHHMMSS}.json`` and ``latest_monitoring.json``) and returns it;
``readmit monitor`` prints it as a table (or ``--json``: :meth:`MonitoringRecord.as_dict`), the
report draws it, and the retrain gate reads its decision. :meth:`MonitoringRecord.read` reads a
written file back, including one written before this class existed: every part but the month,
the model and the decision has a default, and keys it does not know are ignored.

Shape (JSON)::

    run_at, as_of, start, end
    model      {algorithm, version, alias}
    months     [{month, rows, score_psi, csi {feature: CSI}, missing_rate {...},
                 new_category_rate {...}, bands {score_psi, csi_max_feature, csi_max, csi_max_band},
                 labels "mature" | "immature", observed {...} | null, estimated {...} | null}]
    summary    {mature_months, immature_months, observed, estimated, test_auc_roc,
                months_without_predictions, months_scored_by_another_model, profile_source}
    decision   {action "keep" | "watch" | "retrain", reasons [...]}
    thresholds the monitoring_config the run applied
    online     {location, rows, requests, other_models_rows, labelled, observed {...} | null,
                months [{month, rows, requests, risk_mean, risk_p50, risk_p90, flag_rate,
                         bands {band: rows}, arms {arm: rows}, labelled, observed}]}
               the service's answers by the monitored model (its audit records), by request month
    feedback   {location, months, cards, with_feedback, accepted, overridden, feedback_rate,
                acceptance_rate, override_rate, info_cards, other_models_cards, feedback_elsewhere,
                bands {band: {cards, with_feedback, accepted, overridden, feedback_rate,
                              acceptance_rate, override_rate, override_reasons {code: n}}},
                override_reasons {code: n}, reason_names {code: display},
                first_card_at, last_card_at, first_feedback_at, last_feedback_at}
               what clinicians did with the CDS Hooks cards of the monitored model shown in the
               run's months (:mod:`readmit.monitoring.feedback`): the early signal, long before
               the 30-day labels mature
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from readmit.errors import ArtifactError
from readmit.jsonsafe import jsonable

Band = Literal["stable", "watch", "act"]
Action = Literal["keep", "watch", "retrain"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Observed(_Part):
    """Metrics of labelled rows (mature months)."""

    auc_roc: float | None = None
    pr_auc: float | None = None
    brier: float | None = None
    observed_expected: float | None = None
    slope: float | None = None
    positives: int | None = None
    labelled: int | None = None

    @property
    def positive_rate(self) -> float | None:
        return self.positives / self.labelled if self.positives is not None and self.labelled else None


class Estimated(_Part):
    """What the calibrated risks alone imply (immature months)."""

    auc_roc: float | None = None
    positive_rate: float | None = None


class Bands(_Part):
    score_psi: Band | None = None
    csi_max_feature: str | None = None
    csi_max: float | None = None
    csi_max_band: Band | None = None


class MonthResult(_Part):
    """One month of a run: its drift against the reference profile and its performance."""

    month: str
    rows: int = 0
    score_psi: float | None = None
    csi: dict[str, float | None] = Field(default_factory=dict)
    missing_rate: dict[str, float | None] = Field(default_factory=dict)
    new_category_rate: dict[str, float | None] = Field(default_factory=dict)
    bands: Bands = Field(default_factory=Bands)
    labels: Literal["mature", "immature"] = "immature"
    observed: Observed | None = None
    estimated: Estimated | None = None


class Summary(_Part):
    """The run's months pooled: observed over the mature ones, estimated over the others."""

    mature_months: list[str] = Field(default_factory=list)
    immature_months: list[str] = Field(default_factory=list)
    observed: Observed | None = None
    estimated: Estimated | None = None
    test_auc_roc: float | None = None
    months_without_predictions: list[str] = Field(default_factory=list)
    months_scored_by_another_model: list[str] = Field(default_factory=list)
    profile_source: str | None = None


class OnlineMonth(_Part):
    """One month of the service's answers (by the time of the request) for the monitored model."""

    month: str
    rows: int = 0
    requests: int = 0
    risk_mean: float | None = None
    risk_p50: float | None = None
    risk_p90: float | None = None
    flag_rate: float | None = None
    bands: dict[str, int] = Field(default_factory=dict)
    arms: dict[str, int] = Field(default_factory=dict)
    labelled: int = 0
    observed: Observed | None = None


class OnlineSource(_Part):
    """The online predictions (the audit records of ``readmit serve``) of the run's months."""

    location: str | None = None
    rows: int = 0
    requests: int = 0
    other_models_rows: int = 0
    months: list[OnlineMonth] = Field(default_factory=list)
    labelled: int = 0
    observed: Observed | None = None


class FeedbackBand(_Part):
    """The cards of one risk band and what clinicians did with them (rates over the cards shown)."""

    cards: int = 0
    with_feedback: int = 0
    accepted: int = 0
    overridden: int = 0
    feedback_rate: float | None = None
    acceptance_rate: float | None = None
    override_rate: float | None = None
    override_reasons: dict[str, int] = Field(default_factory=dict)


class FeedbackSource(FeedbackBand):
    """Clinician feedback on the CDS Hooks cards (the service's audit trail), pooled and by band."""

    location: str | None = None
    months: list[str] = Field(default_factory=list)
    info_cards: int = 0  # cards outside the intended use (no risk, no band)
    other_models_cards: int = 0
    feedback_elsewhere: int = 0  # feedback on cards not counted here (another model, an info card, other months)
    bands: dict[str, FeedbackBand] = Field(default_factory=dict)
    reason_names: dict[str, str] = Field(default_factory=dict)
    first_card_at: str | None = None
    last_card_at: str | None = None
    first_feedback_at: str | None = None
    last_feedback_at: str | None = None


class Decision(_Part):
    action: Action
    reasons: list[str] = Field(default_factory=list)


class ModelRef(_Part):
    algorithm: str
    version: str
    alias: str | None = None


class MonitoringRecord(_Part):
    run_at: str
    as_of: str
    start: str | None = None
    end: str | None = None
    model: ModelRef
    months: list[MonthResult] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    decision: Decision
    thresholds: dict[str, Any] = Field(default_factory=dict)
    online: OnlineSource | None = None  # None: written before the online source existed
    feedback: FeedbackSource | None = None  # None: written before clinician feedback was counted
    path: str | None = None  # where it was written (not part of the file)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON: the file's content and ``path``."""
        return jsonable(self.model_dump(exclude=self._absent()))

    def file_content(self) -> dict[str, Any]:
        """What the JSON file holds: everything but ``path``."""
        return jsonable(self.model_dump(exclude={"path", *self._absent()}))

    def _absent(self) -> set[str]:
        """Parts a record written before them lacks: left out, so it writes back unchanged."""
        return {part for part in ("online", "feedback") if getattr(self, part) is None}

    @classmethod
    def read(cls, data: Any, source: str) -> MonitoringRecord:
        """A record from its parsed JSON; a file that is not one is an error naming ``source``."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            raise ArtifactError(
                f"not a monitoring record ({exc.error_count()} problem(s); first: {where}: {first['msg']})",
                source=source, fix="delete it; the next `readmit monitor` writes a new one") from None
