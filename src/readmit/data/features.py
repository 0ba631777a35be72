"""Every model feature, defined once: narwhals expressions over silver encounters.

The same definitions run on every engine (Polars, DuckDB, Spark: :mod:`readmit.data.engines`).

Two kinds of features:

- encounter features, computed from the encounter's own row (all known at its discharge);
- patient history, counted over the same patient's earlier encounters: those with a lower
  ``encounter_id`` AND a ``snapshot_date`` that is not later (:func:`prior_encounter`). Both
  orders must agree, so history never counts a later stay even where dates contradict the
  encounter order (``cyclic`` dates), and it never reads a ``readmitted`` value. It is computed
  month by month from a state holding the few history columns of the months already seen
  (:func:`empty_history`, :func:`fold_history`), so any split of the months gives the same result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import narwhals as nw
import polars as pl

from readmit.data.codes import icd10_block, icd10_group, is_icd10_only
from readmit.data.schema import DEATH_OR_HOSPICE_DISPOSITIONS, DRUG_COLUMNS, KEY_COLUMNS, MISSING
from readmit.data.translate import polars_exprs

# The death-or-hospice flag: such encounters cannot lead to a readmission.
DEATH_OR_HOSPICE = "death_or_hospice"
FLAG_COLUMNS: tuple[str, ...] = (DEATH_OR_HOSPICE,)

# -- code tables ---------------------------------------------------------------------------
AGE_MIDPOINTS: dict[str, int] = {f"[{lo}-{lo + 10})": lo + 5 for lo in range(0, 100, 10)}
GLUCOSE_ORDINAL: dict[str, int] = {MISSING: 0, "None": 0, "Norm": 1, ">200": 2, ">300": 3}
A1C_ORDINAL: dict[str, int] = {MISSING: 0, "None": 0, "Norm": 1, ">7": 2, ">8": 3}
DRUG_ORDINAL: dict[str, int] = {MISSING: 0, "No": 0, "Down": 1, "Steady": 2, "Up": 3}

# admission_type_id -> 3 emergency/trauma, 2 urgent, 1 elective/newborn, 0 unknown.
ADMISSION_SEVERITY: dict[int, int] = {1: 3, 7: 3, 2: 2, 3: 1, 4: 1}
# discharge_disposition_id -> 1 home, 2 home with services, 3 transferred to other care,
# 4 left against medical advice, 5 hospice or expired, 0 unknown (18, 25, 26, missing).
DISCHARGE_SEVERITY: dict[int, int] = {
    1: 1, 6: 2, 8: 2,
    **{d: 3 for d in (2, 3, 4, 5, 9, 10, 12, 15, 16, 17, 22, 23, 24, 27, 28, 29, 30)},
    7: 4,
    **{d: 5 for d in DEATH_OR_HOSPICE_DISPOSITIONS},
}
# admission_source_id -> 3 emergency room, 2 transfer from another facility,
# 1 referral or other known route, 0 unknown (9, 15, 17, 20, 21, missing).
ADMISSION_SOURCE_RISK: dict[int, int] = {
    7: 3,
    **{s: 2 for s in (4, 5, 6, 10, 18, 22, 25, 26)},
    **{s: 1 for s in (1, 2, 3, 8, 11, 12, 13, 14, 19, 23, 24)},
}
PAYER_GROUPS: dict[str, str] = {"MC": "Medicare", "MD": "Medicaid", "SP": "SelfPay", MISSING: MISSING}
SPECIALTY_EXACT: dict[str, str] = {
    "internalmedicine": "InternalMedicine",
    "family/generalpractice": "Family/GeneralPractice",
    "emergency/trauma": "Emergency/Trauma",
    "cardiology": "Cardiology",
    "nephrology": "Nephrology",
    MISSING.lower(): MISSING,
}

# -- the features: one record each ---------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """One gold feature: its name, kind, data-dictionary definition and how it is computed.

    ``expr`` builds the feature from the encounter's own silver row (the diagnosis codes' parts
    ``_code_i``/``_whole_i``/``_block_i`` are there too, :func:`_parsed_exprs`); None for patient history,
    which :func:`count_history` counts. Adding a feature is one record in :data:`FEATURES` (and,
    for history, its count in :func:`count_history`); docs/data_dictionary.md is regenerated from
    the table (``tests/data/test_features.py`` says when).
    """

    name: str
    kind: Literal["numeric", "categorical"]  # Int64 or String in gold
    definition: str
    expr: Callable[[], nw.Expr] | None = None


def _numeric(name: str, definition: str, expr: Callable[[], nw.Expr] | None) -> Feature:
    return Feature(name, "numeric", definition, expr)


def _categorical(name: str, definition: str, expr: Callable[[], nw.Expr]) -> Feature:
    return Feature(name, "categorical", definition, expr)


def _count(column: str, definition: str) -> Feature:
    return _numeric(column, definition, lambda: nw.col(column).cast(nw.Int64))


def _visits() -> nw.Expr:
    return nw.sum_horizontal(
        *[nw.col(c).cast(nw.Int64) for c in ("number_outpatient", "number_emergency", "number_inpatient")]
    )


def _drug_count(values: list[str]) -> nw.Expr:
    return nw.sum_horizontal([nw.col(d).is_in(values).cast(nw.Int64).fill_null(0) for d in DRUG_COLUMNS])


MED_FEATURES: dict[str, str] = {f"med_{d.replace('-', '_')}": d for d in DRUG_COLUMNS}
_DIAGNOSES = (1, 2, 3)

FEATURES: tuple[Feature, ...] = (
    _numeric("age_midpoint", "Midpoint of the 10-year age band (`[70-80)` -> 75); null if the age is missing.",
             lambda: _ordinal("age", AGE_MIDPOINTS)),
    _count("time_in_hospital", "Days from admission to discharge (1-14), as recorded."),
    _count("num_lab_procedures", "Number of lab tests performed during the encounter."),
    _count("num_procedures", "Number of procedures other than lab tests during the encounter."),
    _count("num_medications", "Number of distinct generic medications given during the encounter."),
    _count("number_outpatient", "Outpatient visits of the patient in the year before the encounter (source field)."),
    _count("number_emergency", "Emergency visits of the patient in the year before the encounter (source field)."),
    _count("number_inpatient", "Inpatient visits of the patient in the year before the encounter (source field)."),
    _count("number_diagnoses", "Number of diagnoses entered for the encounter."),
    _numeric("total_visits", "number_outpatient + number_emergency + number_inpatient.", _visits),
    _numeric("utilisation",
             "Care load in days: time_in_hospital + 7 * total_visits (each prior-year visit counted as a week).",
             lambda: 7 * _visits() + nw.col("time_in_hospital").cast(nw.Int64)),
    _numeric("admission_severity",
             "admission_type_id as severity: 3 emergency/trauma, 2 urgent, 1 elective/newborn, 0 unknown.",
             lambda: _ordinal("admission_type_id", ADMISSION_SEVERITY, 0)),
    _numeric("discharge_severity",
             "discharge_disposition_id as care need: 1 home, 2 home with services, 3 transferred to other "
             "care, 4 left against medical advice, 5 hospice or expired, 0 unknown.",
             lambda: _ordinal("discharge_disposition_id", DISCHARGE_SEVERITY, 0)),
    _numeric("admission_source_risk",
             "admission_source_id as risk: 3 emergency room, 2 transfer from another facility, "
             "1 referral or other known route, 0 unknown.",
             lambda: _ordinal("admission_source_id", ADMISSION_SOURCE_RISK, 0)),
    _numeric("glucose_ordinal", "max_glu_serum: 0 not measured (None/Missing), 1 Norm, 2 >200, 3 >300.",
             lambda: _ordinal("max_glu_serum", GLUCOSE_ORDINAL)),
    _numeric("a1c_ordinal", "A1Cresult: 0 not measured (None/Missing), 1 Norm, 2 >7, 3 >8.",
             lambda: _ordinal("A1Cresult", A1C_ORDINAL)),
    _numeric("medication_change", "1 if diabetes medication was changed (change == Ch), else 0.",
             lambda: (nw.col("change") == "Ch").cast(nw.Int64)),
    _numeric("diabetes_med", "1 if any diabetes medication was prescribed (diabetesMed == Yes), else 0.",
             lambda: (nw.col("diabetesMed") == "Yes").cast(nw.Int64)),
    _numeric("num_medications_changed", "Number of the 23 diabetes drugs whose dose went Up or Down.",
             lambda: _drug_count(["Up", "Down"])),
    _numeric("num_diabetes_drugs", "Number of the 23 diabetes drugs prescribed (Steady, Up or Down).",
             lambda: _drug_count(["Steady", "Up", "Down"])),
    *[_numeric(name, f"{drug}: 0 not prescribed (No/Missing), 1 dose Down, 2 Steady, 3 dose Up.",
               lambda drug=drug: _ordinal(drug, DRUG_ORDINAL))
      for name, drug in MED_FEATURES.items()],
    _numeric("prior_encounters",
             "Number of this patient's earlier encounters: a lower encounter_id and a snapshot_date on or "
             "before this one's (both orders must agree, so a later stay is never counted).", None),
    _numeric("prior_inpatient_days",
             "Sum of time_in_hospital over this patient's earlier encounters (as in prior_encounters).", None),
    _numeric("prior_emergency_encounters",
             "Earlier encounters of this patient (as in prior_encounters) with admission_type_id 1 (Emergency).",
             None),
    _numeric("days_since_prior_encounter",
             "Days from the latest snapshot_date among the patient's earlier encounters (as in "
             "prior_encounters) to this one's; null when there is none (prior_encounters == 0).", None),
    _categorical("race", "Race as recorded; Missing when not recorded.", lambda: nw.col("race").fill_null(MISSING)),
    _categorical("gender", "Female, Male or Missing (UCI Unknown/Invalid).",
                 lambda: nw.col("gender").fill_null(MISSING)),
    _categorical("admission_type", "admission_type_id as a string code (see `IDs_mapping.csv` inside the UCI zip); Missing if absent.",
                 lambda: _code("admission_type_id")),
    _categorical("discharge_disposition", "discharge_disposition_id as a string code; Missing if absent.",
                 lambda: _code("discharge_disposition_id")),
    _categorical("admission_source", "admission_source_id as a string code; Missing if absent.",
                 lambda: _code("admission_source_id")),
    _categorical("payer_group",
                 "payer_code grouped: Medicare (MC), Medicaid (MD), SelfPay (SP), Missing, Private/Other.",
                 lambda: payer_group(nw.col("payer_code"))),
    _categorical("specialty_group",
                 "medical_specialty grouped: InternalMedicine, Family/GeneralPractice, Emergency/Trauma, "
                 "Cardiology, Surgery (Surgery-*, Surgeon, SurgicalSpecialty), Orthopedics (Orthopedics*), "
                 "Nephrology, Missing, Other.",
                 lambda: specialty_group(nw.col("medical_specialty"))),
    *[_categorical(f"diag_{i}_group",
                   f"diag_{i} ICD-9 or ICD-10-CM code in Strack et al. (2014) groups: Circulatory, Respiratory, "
                   "Digestive, Diabetes, Injury, Musculoskeletal, Genitourinary, Neoplasms, Other (incl. ICD-9 V/E "
                   "codes), Missing (ICD-10 blocks: readmit.data.codes.ICD10_GROUPS).",
                   lambda i=i: icd9_group(nw.col(f"_code_{i}"), nw.col(f"_whole_{i}"), nw.col(f"_block_{i}")))
      for i in _DIAGNOSES],
)

# -- views of the table ----------------------------------------------------------------------
NUMERIC_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "numeric")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "categorical")
HISTORY_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.expr is None)
FEATURE_COLUMNS: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES
FEATURE_DTYPES: dict[str, pl.DataType] = {
    **{name: pl.Int64() for name in NUMERIC_FEATURES},
    **{name: pl.String() for name in CATEGORICAL_FEATURES},
}
FEATURE_DEFINITIONS: dict[str, str] = {f.name: f.definition for f in FEATURES}

FLAG_DEFINITIONS: dict[str, str] = {
    DEATH_OR_HOSPICE: (
        f"True when discharge_disposition_id is in {', '.join(map(str, sorted(DEATH_OR_HOSPICE_DISPOSITIONS)))} "
        "(expired or hospice): "
        "such encounters cannot lead to a readmission; training and scoring may leave them out."
    ),
}

# The silver columns patient history is counted from: the history state is these columns of
# every encounter of the months already folded in (see :func:`fold_history`).
HISTORY_INPUT_COLUMNS: tuple[str, ...] = (
    "encounter_id", "patient_nbr", "snapshot_date", "time_in_hospital", "admission_type_id",
)
HISTORY_STATE_SCHEMA: dict[str, pl.DataType] = {
    "encounter_id": pl.Int64(),
    "patient_nbr": pl.Int64(),
    "snapshot_date": pl.Date(),
    "time_in_hospital": pl.Int64(),
    "admission_type_id": pl.Int64(),
}


def death_or_hospice() -> pl.Expr:
    """The rule that leaves encounters out: the DEATH_OR_HOSPICE flag is set (null counts as not)."""
    return pl.col(DEATH_OR_HOSPICE).fill_null(False)


# -- code groupings ------------------------------------------------------------------------
# Every rule below is a narwhals expression: the same definition runs on Polars, DuckDB and
# Spark (``data_config.engine``, :mod:`readmit.data.engines`). Only operations all three
# execute are used: no value maps or strict casts, which differ between engines.
def mapped(expr: nw.Expr, mapping: dict, default: object = None) -> nw.Expr:
    """``expr`` replaced through ``mapping``; anything else (null included) becomes ``default``."""
    groups: dict[object, list] = {}
    for key, value in mapping.items():
        groups.setdefault(value, []).append(key)
    (first, keys), *rest = groups.items()
    chain = nw.when(expr.is_in(keys)).then(nw.lit(first))
    for value, keys in rest:
        chain = chain.when(expr.is_in(keys)).then(nw.lit(value))
    return chain.otherwise(nw.lit(default))


# An ICD-9 code read as a number: digits with an optional decimal part (V and E codes are not).
_NUMERIC_CODE = r"^[0-9]{1,6}(\.[0-9]*)?$"


def icd9_parts(code: nw.Expr) -> tuple[nw.Expr, nw.Expr]:
    """An ICD-9 code string standardised (stripped, upper case) and its whole part as a number.

    The whole part is null unless the code is numeric (casting only digits: engines differ on
    what a lenient cast of other text gives).
    """
    code = code.str.strip_chars().str.to_uppercase()
    whole = nw.when(code.str.contains(_NUMERIC_CODE)).then(code.str.replace_all(r"\..*$", "")).cast(nw.Int64)
    return code, whole


def icd9_group(code: nw.Expr, whole: nw.Expr | None = None, block: nw.Expr | None = None) -> nw.Expr:
    """Strack et al. (2014) group of an ICD-9 or ICD-10-CM code string; null or ``Missing`` -> ``Missing``.

    An ICD-10-only shape takes the ICD-10 rule (:func:`readmit.data.codes.icd10_group`), any other code this ICD-9 one.

    ``whole``, ``block``: the code's parts from :func:`icd9_parts` and
    :func:`readmit.data.codes.icd10_block`, already computed (as columns, so engines without
    common-subexpression elimination parse each code once); by default computed here.
    """
    if whole is None:
        code, whole = icd9_parts(code)
    if block is None:
        block = icd10_block(code)

    def within(lo: int, hi: int, *extra: int) -> nw.Expr:
        cond = whole.is_between(lo, hi)
        for value in extra:
            cond = cond | (whole == value)
        return cond

    return (
        nw.when(code.is_null() | (code == "") | (code == MISSING.upper())).then(nw.lit(MISSING))
        .when(is_icd10_only(code)).then(icd10_group(code, block))  # one rule for both systems: readmit.data.codes
        .when(code.str.starts_with("V") | code.str.starts_with("E") | whole.is_null()).then(nw.lit("Other"))
        .when(whole == 250).then(nw.lit("Diabetes"))
        .when(within(390, 459, 785)).then(nw.lit("Circulatory"))
        .when(within(460, 519, 786)).then(nw.lit("Respiratory"))
        .when(within(520, 579, 787)).then(nw.lit("Digestive"))
        .when(within(800, 999)).then(nw.lit("Injury"))
        .when(within(710, 739)).then(nw.lit("Musculoskeletal"))
        .when(within(580, 629, 788)).then(nw.lit("Genitourinary"))
        .when(within(140, 239)).then(nw.lit("Neoplasms"))
        .otherwise(nw.lit("Other"))
    )


def specialty_group(specialty: nw.Expr) -> nw.Expr:
    """Group medical_specialty into the common specialties, Missing and Other."""
    lower = specialty.str.strip_chars().str.to_lowercase().fill_null(MISSING.lower())
    return (
        nw.when(lower.str.starts_with("surg")).then(nw.lit("Surgery"))
        .when(lower.str.starts_with("orthopedics")).then(nw.lit("Orthopedics"))
        .otherwise(mapped(lower, SPECIALTY_EXACT, "Other"))
    )


def payer_group(payer: nw.Expr) -> nw.Expr:
    """Group payer_code into Medicare, Medicaid, SelfPay, Missing and Private/Other."""
    code = payer.str.strip_chars().str.to_uppercase().fill_null(MISSING)
    code = nw.when(code == MISSING.upper()).then(nw.lit(MISSING)).otherwise(code)
    return mapped(code, PAYER_GROUPS, "Private/Other")


def _ordinal(col: str, mapping: dict, default: int | None = None) -> nw.Expr:
    return mapped(nw.col(col), mapping, default).cast(nw.Int64)


def _code(col: str) -> nw.Expr:
    return nw.col(col).cast(nw.String).fill_null(MISSING)


def day_number(date: nw.Expr) -> nw.Expr:
    """Days since 1970-01-01 of a date, in integer arithmetic every engine runs the same way.

    (The civil-calendar day count of H. Hinnant's ``days_from_civil``; years from 1 on.)
    """
    month = date.dt.month().cast(nw.Int64)
    early = (month <= 2).cast(nw.Int64)  # January and February count in the previous year
    year = date.dt.year().cast(nw.Int64) - early
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + 12 * early - 3) + 2) // 5 + date.dt.day().cast(nw.Int64) - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


@functools.cache
def _polars_encounter_exprs() -> tuple[list[pl.Expr], list[pl.Expr]] | None:
    parsed, features = polars_exprs(_parsed_exprs()), polars_exprs(_encounter_exprs())
    return None if parsed is None or features is None else (parsed, features)


def _frame(frame: Any) -> tuple[Any, bool]:
    """``frame`` as a narwhals frame, and whether it came in native (to hand it back native)."""
    is_native = not isinstance(frame, nw.DataFrame | nw.LazyFrame)
    return (nw.from_native(frame) if is_native else frame), is_native


# -- encounter features --------------------------------------------------------------------


@functools.cache
def _parsed_exprs() -> tuple[nw.Expr, ...]:
    """Intermediate columns computed once before the features: the diagnosis codes' parts (the
    standardised code, its ICD-9 whole part, its ICD-10 block)."""
    parts = [(i, *icd9_parts(nw.col(f"diag_{i}"))) for i in _DIAGNOSES]
    return (*[code.alias(f"_code_{i}") for i, code, _ in parts], *[whole.alias(f"_whole_{i}") for i, _, whole in parts],
            *[icd10_block(code).alias(f"_block_{i}") for i, code, _ in parts])


@functools.cache
def _encounter_exprs() -> tuple[nw.Expr, ...]:
    """KEY_COLUMNS, the encounter features of :data:`FEATURES` in order, and the flags."""
    return (
        *[nw.col(c) for c in KEY_COLUMNS],
        *[f.expr().alias(f.name) for f in FEATURES if f.expr is not None],
        nw.col("discharge_disposition_id").is_in(sorted(DEATH_OR_HOSPICE_DISPOSITIONS))
        .fill_null(False).alias(DEATH_OR_HOSPICE),
    )


def encounter_features(silver: Any) -> Any:
    """KEY_COLUMNS, every feature that depends only on the encounter's own row, and the flags.

    ``silver``: any frame narwhals reads (Polars, DuckDB, Spark; eager or lazy); the result is
    of the same kind.
    """
    frame, native = _frame(silver)
    translated = _polars_encounter_exprs() if frame.implementation.is_polars() else None
    if translated is not None:  # the same expressions, translated once
        parsed, features = translated
        out = nw.from_native(frame.to_native().with_columns(parsed).select(features))
    else:
        out = frame.with_columns(*_parsed_exprs()).select(*_encounter_exprs())
    return out.to_native() if native else out


# -- patient history -----------------------------------------------------------------------
def prior_encounter(prior: str = "_prior") -> nw.Expr:
    """True when the encounter with suffix ``prior`` came before this one: the rule of all history.

    An encounter is earlier when its ``encounter_id`` is lower AND its ``snapshot_date`` is not
    later. Both must hold: with dates that contradict the encounter order (``cyclic`` derivation,
    dates from the input), ordering by date alone would count a later stay, the very readmission
    the label is about.
    """
    return (nw.col(f"encounter_id{prior}") < nw.col("encounter_id")) & (
        nw.col(f"snapshot_date{prior}") <= nw.col("snapshot_date")
    )


@functools.cache
def _history_exprs() -> dict[str, tuple[nw.Expr, ...]]:
    """The expressions of :func:`count_history` and :func:`gold_features`, by the step that runs them."""
    return {
        "me": (nw.col("encounter_id"), nw.col("patient_nbr"), nw.col("snapshot_date")),
        "earlier": (
            nw.col("patient_nbr"),
            nw.col("encounter_id").alias("encounter_id_prior"),
            nw.col("snapshot_date").alias("snapshot_date_prior"),
            nw.col("time_in_hospital").cast(nw.Int64).fill_null(0).alias("_days"),
            (nw.col("admission_type_id") == 1).fill_null(False).cast(nw.Int64).alias("_emergency"),
            day_number(nw.col("snapshot_date")).alias("_day"),
        ),
        "prior": (prior_encounter(),),
        "counted": (
            nw.len().alias("_n"),
            nw.col("_days").sum().alias("_days"),
            nw.col("_emergency").sum().alias("_emergency"),
            nw.col("_day").max().alias("_last"),
        ),
        "history": (
            nw.col("encounter_id"),
            nw.col("_n").fill_null(0).cast(nw.Int64).alias("prior_encounters"),
            nw.col("_days").fill_null(0).cast(nw.Int64).alias("prior_inpatient_days"),
            nw.col("_emergency").fill_null(0).cast(nw.Int64).alias("prior_emergency_encounters"),
            (day_number(nw.col("snapshot_date")) - nw.col("_last")).cast(nw.Int64).alias("days_since_prior_encounter"),
        ),
        "gold": (
            *[nw.col(c) for c in KEY_COLUMNS],
            *[nw.col(c).cast(nw.Int64 if c in NUMERIC_FEATURES else nw.String) for c in FEATURE_COLUMNS],
            *[nw.col(c) for c in FLAG_COLUMNS],
        ),
    }


@functools.cache
def _polars_history_exprs() -> dict[str, list[pl.Expr]] | None:
    """:func:`_history_exprs` translated to Polars once (None: narwhals changed, run them as they are)."""
    translated = {step: polars_exprs(exprs) for step, exprs in _history_exprs().items()}
    return None if any(t is None for t in translated.values()) else translated


def _on_engine(*frames: Any) -> tuple[dict[str, Any], list[Any], bool]:
    """(the expressions by step, the frames to run them on, whether those are native Polars).

    Narwhals frames over Polars run the translated expressions on the native frames (the same
    definitions without narwhals' per-call translation, which costs more than one encounter's
    rows); any other engine runs the narwhals expressions.
    """
    translated = _polars_history_exprs() if all(f.implementation.is_polars() for f in frames) else None
    if translated is None:
        return _history_exprs(), list(frames), False
    return translated, [f.to_native() for f in frames], True


def count_history(encounters: Any, pool: Any) -> Any:
    """``encounter_id`` + HISTORY_FEATURES of ``encounters``, counted over the encounters of ``pool``.

    ``pool`` (HISTORY_INPUT_COLUMNS) holds every encounter that may come before them, their own
    rows included (:func:`prior_encounter` leaves each out of its own count). Narwhals frames in,
    a narwhals frame out (no row order): the one definition of history on every engine.
    """
    exprs, (encounters, pool), native = _on_engine(encounters, pool)
    out = _count(exprs, encounters, pool)
    return nw.from_native(out) if native else out


def _count(exprs: dict[str, Any], encounters: Any, pool: Any) -> Any:
    """The steps of :func:`count_history` (the same on narwhals and on native Polars frames)."""
    me = encounters.select(*exprs["me"])
    earlier = pool.select(*exprs["earlier"])
    counted = (
        me.join(earlier, on="patient_nbr", how="inner")
        .filter(*exprs["prior"])
        .group_by("encounter_id")
        .agg(*exprs["counted"])
    )
    return me.join(counted, on="encounter_id", how="left").select(*exprs["history"])


def gold_features(silver: Any, pool: Any) -> Any:
    """Feature-store rows (KEY_COLUMNS + FEATURE_COLUMNS + FLAG_COLUMNS) of narwhals ``silver``.

    ``pool``: the history inputs of every encounter that may count as earlier (see
    :func:`count_history`). No row order: the caller sorts what it collects.
    """
    history = count_history(silver, pool)
    rows = encounter_features(silver).join(history, on="encounter_id", how="left")
    exprs, (rows,), native = _on_engine(rows)
    out = rows.select(*exprs["gold"])
    return nw.from_native(out) if native else out


def date_order_contradictions(frame: pl.DataFrame) -> int:
    """How many patients have an encounter dated before one of their lower ``encounter_id``.

    ``frame`` needs ``patient_nbr``, ``encounter_id`` and ``snapshot_date``. Such patients' date
    order contradicts their encounter order; history never counts across the contradiction.
    """
    return int(
        frame.lazy()
        .group_by("patient_nbr")
        .agg((pl.col("snapshot_date").sort_by("encounter_id").diff() < 0).any().alias("_bad"))
        .select(pl.col("_bad").sum())
        .collect()
        .item()
        or 0
    )


# -- the Polars path: history state carried from month to month ---------------------------
def empty_history() -> pl.DataFrame:
    """The history state before any encounter: no encounters."""
    return pl.DataFrame(schema=HISTORY_STATE_SCHEMA)


def fold_history(state: pl.DataFrame, encounters: pl.DataFrame) -> pl.DataFrame:
    """The state with ``encounters`` (other months than those already folded) added."""
    added = encounters.select(HISTORY_INPUT_COLUMNS).cast(HISTORY_STATE_SCHEMA)
    return pl.concat([state, added], how="vertical", rechunk=False)


def _pool(ordered: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """``ordered``'s history inputs and the state's rows that may count for them."""
    if ordered.height == 0:
        return ordered
    others = state.filter(
        pl.col("patient_nbr").is_in(ordered["patient_nbr"].unique().implode())
        & (pl.col("snapshot_date") <= ordered["snapshot_date"].max())
        & ~pl.col("encounter_id").is_in(ordered["encounter_id"].implode())
    )
    return pl.concat([others, ordered], how="vertical")


def history_features(encounters: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """``encounter_id`` and HISTORY_FEATURES for ``encounters``, in (snapshot_date, encounter_id) order.

    History counts, for each encounter, the same patient's encounters that came before it
    (:func:`prior_encounter`) among ``encounters`` and the ``state`` (the encounters of other
    months, :func:`fold_history`). Nothing else is read, so any split of the months into runs
    gives the same result. The work is one join of each encounter with its patient's other
    encounters up to its date: quadratic per patient, linear overall while patients have tens of
    stays (40 at most on the UCI file).
    """
    ordered = encounters.select(HISTORY_INPUT_COLUMNS).cast(HISTORY_STATE_SCHEMA)
    ordered = ordered.sort("snapshot_date", "encounter_id", maintain_order=True)
    counted = count_history(nw.from_native(ordered.lazy()), nw.from_native(_pool(ordered, state).lazy()))
    counted = counted.collect().to_native()
    keys = ordered.select("encounter_id", "snapshot_date")
    return keys.join(counted, on="encounter_id", how="left", maintain_order="left").drop("snapshot_date")


def feature_frame(silver: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    """Feature-store rows for silver encounters: KEY_COLUMNS + FEATURE_COLUMNS + FLAG_COLUMNS.

    ``state`` holds the history inputs of the other months (:func:`fold_history`); rows come
    back sorted by (snapshot_date, encounter_id).
    """
    pool = _pool(silver.select(HISTORY_INPUT_COLUMNS).cast(HISTORY_STATE_SCHEMA), state)
    rows = gold_features(nw.from_native(silver.lazy()), nw.from_native(pool.lazy())).collect().to_native()
    return rows.sort("snapshot_date", "encounter_id", maintain_order=True).cast(FEATURE_DTYPES)


def render_data_dictionary() -> str:
    """The feature tables of docs/data_dictionary.md, as markdown."""
    lines = ["| Feature | Kind | Type | Definition |", "|---|---|---|---|"]
    for name in FEATURE_COLUMNS:
        kind = "numeric" if name in NUMERIC_FEATURES else "categorical"
        lines.append(f"| `{name}` | {kind} | {FEATURE_DTYPES[name]} | {FEATURE_DEFINITIONS[name]} |")
    lines += ["", "| Flag | Type | Definition |", "|---|---|---|"]
    lines += [f"| `{name}` | Boolean | {text} |" for name, text in FLAG_DEFINITIONS.items()]
    return "\n".join(lines) + "\n"
