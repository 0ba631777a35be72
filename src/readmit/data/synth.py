"""Synthetic encounters in the exact UCI ``diabetic_data.csv`` format, for tests and load tests.

The marginals follow the real file (rounded frequencies measured on it: readmitted ``<30`` ~11%,
``>30`` ~35%, ``NO`` ~54%; ``?`` for missing race/payer/specialty/diagnoses; ``None`` for
``max_glu_serum``/``A1Cresult``; drugs mostly ``No``). Patients come back: about 70% of rows have
a distinct ``patient_nbr``, and ``encounter_id`` increases along the file.

The label carries a modest, honest signal: the chance of ``<30`` rises with ``number_inpatient``,
``number_emergency``, ``time_in_hospital``, the patient's earlier encounters, discharge to a
skilled nursing facility (3) and age, plus a hidden per-patient frailty, so a good model reaches a
ROC-AUC of about 0.65-0.70, as on the real data. Encounters ending in death or hospice are never
readmitted.

Rows are made in chunks with vectorised numpy and appended to the CSV, so memory does not grow with
``rows``; the output depends only on ``rows`` and ``seed``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from readmit.data.schema import DEATH_OR_HOSPICE_DISPOSITIONS, DRUG_COLUMNS, RAW_SCHEMA

CHUNK_ROWS = 250_000
SNAPSHOT_START = date(1999, 1, 1)
SNAPSHOT_END = date(2008, 12, 31)

# (value, weight) tables, rounded from the real file.
_RACE = (("Caucasian", 74.8), ("AfricanAmerican", 18.9), ("?", 2.2), ("Hispanic", 2.0),
         ("Other", 1.5), ("Asian", 0.6))
_GENDER = (("Female", 53.76), ("Male", 46.235), ("Unknown/Invalid", 0.005))
_AGE = (("[0-10)", 0.16), ("[10-20)", 0.68), ("[20-30)", 1.63), ("[30-40)", 3.71),
        ("[40-50)", 9.52), ("[50-60)", 16.96), ("[60-70)", 22.09), ("[70-80)", 25.62),
        ("[80-90)", 16.90), ("[90-100)", 2.74))
_WEIGHT = (("?", 96.86), ("[75-100)", 1.31), ("[50-75)", 0.88), ("[100-125)", 0.61),
           ("[125-150)", 0.14), ("[25-50)", 0.10), ("[0-25)", 0.05), ("[150-175)", 0.03),
           ("[175-200)", 0.01), (">200", 0.003))
_ADMISSION_TYPE = ((1, 53.05), (3, 18.54), (2, 18.16), (6, 5.20), (5, 4.70), (8, 0.31),
                   (7, 0.02), (4, 0.01))
_DISCHARGE = ((1, 59.19), (3, 13.71), (6, 12.68), (18, 3.63), (2, 2.09), (22, 1.96), (11, 1.61),
              (5, 1.16), (25, 0.97), (4, 0.80), (7, 0.61), (23, 0.40), (13, 0.39), (14, 0.37),
              (28, 0.14), (8, 0.11), (15, 0.06), (24, 0.05), (9, 0.02), (17, 0.01), (16, 0.01),
              (19, 0.01), (10, 0.01), (27, 0.005), (12, 0.003), (20, 0.002))
_ADMISSION_SOURCE = ((7, 56.50), (1, 29.05), (17, 6.66), (4, 3.13), (6, 2.22), (2, 1.08),
                     (5, 0.84), (3, 0.18), (20, 0.16), (9, 0.12), (8, 0.02), (22, 0.01),
                     (10, 0.01), (14, 0.002), (11, 0.002), (25, 0.002), (13, 0.001))
_TIME_IN_HOSPITAL = tuple(zip(range(1, 15), (13.96, 16.93, 17.45, 13.68, 9.79, 7.41, 5.76, 4.31,
                                             2.95, 2.30, 1.82, 1.42, 1.19, 1.02), strict=True))
_PAYER = (("?", 39.56), ("MC", 31.88), ("HM", 6.17), ("SP", 4.92), ("BC", 4.57), ("MD", 3.47),
          ("CP", 2.49), ("UN", 2.41), ("CM", 1.90), ("OG", 1.02), ("PO", 0.58), ("DM", 0.54),
          ("CH", 0.14), ("WC", 0.13), ("OT", 0.09), ("MP", 0.08), ("SI", 0.05), ("FR", 0.001))
_SPECIALTY = (("?", 49.08), ("InternalMedicine", 14.38), ("Emergency/Trauma", 7.43),
              ("Family/GeneralPractice", 7.31), ("Cardiology", 5.26), ("Surgery-General", 3.05),
              ("Nephrology", 1.59), ("Orthopedics", 1.38), ("Orthopedics-Reconstructive", 1.21),
              ("Radiologist", 1.12), ("Pulmonology", 0.86), ("Psychiatry", 0.84),
              ("Urology", 0.67), ("ObstetricsandGynecology", 0.66),
              ("Surgery-Cardiovascular/Thoracic", 0.64), ("Gastroenterology", 0.55),
              ("Surgery-Vascular", 0.52), ("Surgery-Neuro", 0.46),
              ("PhysicalMedicineandRehabilitation", 0.38), ("Oncology", 0.34),
              ("Pediatrics", 0.25), ("Hematology/Oncology", 0.20), ("Neurology", 0.20),
              ("Pediatrics-Endocrinology", 0.16), ("Otolaryngology", 0.12),
              ("Endocrinology", 0.12), ("Surgery-Thoracic", 0.11), ("Psychology", 0.10),
              ("Podiatry", 0.10), ("Surgery-Cardiovascular", 0.10), ("Gynecology", 0.06),
              ("Hematology", 0.08), ("Hospitalist", 0.06), ("Osteopath", 0.04))
_NUM_PROCEDURES = ((0, 45.84), (1, 20.38), (2, 12.50), (3, 9.28), (6, 4.87), (4, 4.11),
                   (5, 3.02))
_NUMBER_DIAGNOSES = ((9, 48.62), (5, 11.20), (8, 10.43), (7, 10.21), (6, 9.98), (4, 5.44),
                     (3, 2.79), (2, 1.01), (1, 0.22), (16, 0.04), (10, 0.02), (13, 0.02),
                     (11, 0.01), (15, 0.01), (12, 0.01), (14, 0.01))
_MAX_GLU = (("None", 94.75), ("Norm", 2.55), (">200", 1.46), (">300", 1.24))
_A1C = (("None", 83.28), (">8", 8.07), ("Norm", 4.90), (">7", 3.75))
# Frequent ICD-9 codes of diag_1..3 with their weights; a generated tail of codes fills the rest.
_DIAG_1 = (("428", 6.74), ("414", 6.47), ("786", 3.95), ("410", 3.55), ("486", 3.45),
           ("427", 2.72), ("491", 2.24), ("715", 2.11), ("682", 2.01), ("434", 1.99),
           ("780", 1.98), ("996", 1.93), ("276", 1.86), ("38", 1.66), ("250.8", 1.65),
           ("599", 1.57), ("584", 1.49), ("V57", 1.19), ("250.6", 1.16), ("518", 1.10),
           ("820", 1.06), ("577", 1.04), ("493", 1.04), ("435", 1.00), ("562", 0.97))
_DIAG_2 = (("276", 6.63), ("428", 6.55), ("250", 5.97), ("427", 4.95), ("401", 3.67),
           ("496", 3.25), ("599", 3.23), ("403", 2.77), ("414", 2.60), ("411", 2.52),
           ("250.02", 2.04), ("707", 1.96), ("585", 1.84), ("584", 1.62), ("491", 1.52),
           ("250.01", 1.50), ("285", 1.49), ("780", 1.47), ("425", 1.41), ("682", 1.41),
           ("486", 1.36), ("518", 1.33), ("424", 1.05), ("413", 1.02), ("250.6", 0.88))
_DIAG_3 = (("250", 11.35), ("401", 8.15), ("276", 5.09), ("428", 4.50), ("427", 3.89),
           ("414", 3.60), ("496", 2.56), ("403", 2.32), ("585", 1.96), ("272", 1.93),
           ("599", 1.91), ("?", 1.40), ("V45", 1.36), ("250.02", 1.35), ("707", 1.34),
           ("780", 1.31), ("285", 1.18), ("425", 1.12), ("250.6", 1.06), ("424", 1.04),
           ("584", 0.95), ("305", 0.91), ("250.01", 0.90), ("682", 0.87), ("518", 0.84))
_DIAG_MISSING = {"diag_1": 0.0002, "diag_2": 0.0035, "diag_3": 0.0}
# Share of each drug's rows that are Steady / Up / Down (the rest is "No").
_DRUG_USE = {
    "metformin": (18.03, 1.05, 0.57), "repaglinide": (1.36, 0.11, 0.04),
    "nateglinide": (0.66, 0.02, 0.01), "chlorpropamide": (0.08, 0.01, 0.001),
    "glimepiride": (4.59, 0.32, 0.19), "acetohexamide": (0.001, 0.0, 0.0),
    "glipizide": (11.16, 0.76, 0.55), "glyburide": (9.11, 0.80, 0.55),
    "tolbutamide": (0.02, 0.0, 0.0), "pioglitazone": (6.85, 0.23, 0.12),
    "rosiglitazone": (5.99, 0.17, 0.09), "acarbose": (0.29, 0.01, 0.003),
    "miglitol": (0.03, 0.002, 0.004), "troglitazone": (0.003, 0.0, 0.0),
    "tolazamide": (0.04, 0.001, 0.0), "examide": (0.0, 0.0, 0.0),
    "citoglipton": (0.0, 0.0, 0.0), "insulin": (30.31, 11.12, 12.01),
    "glyburide-metformin": (0.68, 0.01, 0.01), "glipizide-metformin": (0.01, 0.0, 0.0),
    "glimepiride-pioglitazone": (0.001, 0.0, 0.0), "metformin-rosiglitazone": (0.002, 0.0, 0.0),
    "metformin-pioglitazone": (0.001, 0.0, 0.0),
}


def _table(pairs: tuple) -> tuple[list, np.ndarray]:
    values = [v for v, _ in pairs]
    weights = np.array([w for _, w in pairs], dtype=float)
    return values, weights / weights.sum()


def _diag_vocabulary(top: tuple, missing: float) -> tuple[list[str], np.ndarray]:
    """The frequent codes plus a fixed tail of plausible ICD-9 codes (numeric, V and E codes)."""
    values, weights = _table(top)
    tail_rng = np.random.default_rng(296)  # fixed: the vocabulary is the same for every seed
    numbers = tail_rng.choice(np.arange(1, 1000), size=500, replace=False)
    tail = [str(n) if i % 3 else f"{n}.{tail_rng.integers(1, 10)}" for i, n in enumerate(numbers)]
    tail += [f"V{n:02d}" for n in tail_rng.choice(np.arange(1, 90), 40, replace=False)]
    tail += [f"E{n}" for n in tail_rng.choice(np.arange(800, 1000), 40, replace=False)]
    tail = [t for t in dict.fromkeys(tail) if t not in values and t != "?"]
    tail_weights = 1.0 / np.arange(1, len(tail) + 1) ** 0.8
    head_share = sum(w for _, w in top) / 100.0
    if "?" not in values and missing:
        values.append("?")
        weights = np.append(weights * head_share, missing)
    else:
        weights = weights * head_share
    rest = max(1.0 - weights.sum(), 0.0)
    all_weights = np.concatenate([weights, tail_weights / tail_weights.sum() * rest])
    return values + tail, all_weights / all_weights.sum()


def _pick(rng: np.random.Generator, table: tuple[list, np.ndarray], n: int) -> np.ndarray:
    """Indices into ``table``'s values drawn with its weights."""
    return np.searchsorted(np.cumsum(table[1]), rng.random(n), side="right").clip(
        0, len(table[0]) - 1
    )


def _strings(name: str, values: list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(name, values, dtype=pl.String).gather(idx)


class _Generator:
    """Makes consecutive chunks; carries patient and encounter counters across chunks."""

    def __init__(self, seed: int):
        self.seed = seed
        self.next_patient = 0
        self.next_encounter = 12_522
        self.tables = {
            name: _table(pairs) for name, pairs in {
                "race": _RACE, "gender": _GENDER, "age": _AGE, "weight": _WEIGHT,
                "admission_type_id": _ADMISSION_TYPE, "discharge": _DISCHARGE,
                "admission_source_id": _ADMISSION_SOURCE, "time": _TIME_IN_HOSPITAL,
                "payer_code": _PAYER, "medical_specialty": _SPECIALTY,
                "num_procedures": _NUM_PROCEDURES, "number_diagnoses": _NUMBER_DIAGNOSES,
                "max_glu_serum": _MAX_GLU, "A1Cresult": _A1C,
            }.items()
        }
        self.diag = {
            "diag_1": _diag_vocabulary(_DIAG_1, _DIAG_MISSING["diag_1"]),
            "diag_2": _diag_vocabulary(_DIAG_2, _DIAG_MISSING["diag_2"]),
            "diag_3": _diag_vocabulary(_DIAG_3, _DIAG_MISSING["diag_3"]),
        }

    def chunk(self, index: int, n: int) -> pl.DataFrame:
        """The next ``n`` encounters (chunk number ``index``), in the raw UCI columns.

        Every random draw comes from one generator seeded by (seed, index), in a fixed order:
        patients, encounters, their clinical counts, drugs, the label, then the plain categories.
        """
        rng = np.random.default_rng([self.seed, index])
        patient, prior, patient_nbr = self._patients(rng, n)
        frailty = rng.normal(0.0, 1.0, len(patient_nbr))[patient]
        demographics = {name: _pick(rng, self.tables[name], len(patient_nbr))[patient]
                        for name in ("race", "gender", "age")}
        encounter_id = self.next_encounter + np.cumsum(rng.integers(1, 8_000, n))
        self.next_encounter = int(encounter_id[-1])
        clinical = self._clinical(rng, n, frailty, prior)
        drugs, any_drug, any_change = _drugs(rng, n)
        readmitted = _readmitted(rng, n, clinical, prior, demographics["age"], any_drug, frailty)
        return self._columns(rng, n, encounter_id, patient_nbr[patient], demographics, clinical,
                             drugs, any_drug, any_change, readmitted)

    def _patients(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Who each encounter belongs to (index into the chunk's patients), how many of that
        patient's encounters come before it in the chunk, and each patient's ``patient_nbr``.

        Each patient returns a geometric number of times (mean ~1.43 -> ~70% distinct).
        """
        counts = rng.geometric(0.7, size=n)
        ends = np.cumsum(counts)
        n_patients = int(np.searchsorted(ends, n) + 1)
        counts = counts[:n_patients].copy()
        counts[-1] -= ends[n_patients - 1] - n
        patient = rng.permutation(np.repeat(np.arange(n_patients), counts))
        order = np.argsort(patient, kind="stable")
        group_start = np.repeat(np.cumsum(counts) - counts, counts)
        prior = np.empty(n, dtype=np.int64)
        prior[order] = np.arange(n) - group_start
        patient_nbr = 135 + (self.next_patient + np.arange(n_patients)) * 27 \
            + rng.integers(0, 27, n_patients)
        self.next_patient += n_patients
        return patient, prior, patient_nbr

    def _clinical(self, rng: np.random.Generator, n: int, frailty: np.ndarray,
                  prior: np.ndarray) -> dict[str, np.ndarray]:
        """Discharge, stay, visits, labs, medications and diagnoses counts of each encounter."""
        t = self.tables
        discharge = np.array(t["discharge"][0])[_pick(rng, t["discharge"], n)]
        time_in_hospital = np.array(t["time"][0])[_pick(rng, t["time"], n)]
        inpatient = rng.poisson(np.exp(-1.35 + 0.9 * frailty) + 0.4 * np.minimum(prior, 6))
        emergency = rng.poisson(np.exp(-2.5 + 1.0 * frailty) + 0.05 * np.minimum(prior, 6))
        outpatient = rng.poisson(np.exp(-1.8 + 1.0 * rng.normal(0, 1, n) + 0.3 * frailty))
        lab = np.where(rng.random(n) < 0.03, 1,
                       np.clip(np.rint(rng.normal(44, 19, n)), 1, 132)).astype(np.int64)
        medications = np.clip(np.rint(rng.gamma(4.5, 2.6, n) + 0.9 * time_in_hospital), 1, 81)
        diagnoses = np.array(t["number_diagnoses"][0])[_pick(rng, t["number_diagnoses"], n)]
        return {
            "discharge_disposition_id": discharge, "time_in_hospital": time_in_hospital,
            "number_inpatient": inpatient, "number_emergency": emergency,
            "number_outpatient": outpatient, "num_lab_procedures": lab,
            "num_medications": medications.astype(np.int64), "number_diagnoses": diagnoses,
        }

    def _columns(self, rng: np.random.Generator, n: int, encounter_id: np.ndarray,
                 patient_nbr: np.ndarray, demographics: dict[str, np.ndarray],
                 clinical: dict[str, np.ndarray], drugs: dict[str, np.ndarray],
                 any_drug: np.ndarray, any_change: np.ndarray,
                 readmitted: np.ndarray) -> pl.DataFrame:
        """The raw columns, drawing the plain categories (in the file's column order)."""
        t = self.tables

        def drawn(name: str, table: tuple[list, np.ndarray] | None = None) -> pl.Series:
            table = table or t[name]
            return _strings(name, table[0], _pick(rng, table, n))

        def coded(name: str) -> pl.Series:
            return pl.Series(np.array(t[name][0])[_pick(rng, t[name], n)])

        columns: dict[str, pl.Series] = {
            "encounter_id": pl.Series(encounter_id),
            "patient_nbr": pl.Series(patient_nbr),
            **{name: _strings(name, t[name][0], idx) for name, idx in demographics.items()},
            "weight": drawn("weight"),
            "admission_type_id": coded("admission_type_id"),
            "discharge_disposition_id": pl.Series(clinical["discharge_disposition_id"]),
            "admission_source_id": coded("admission_source_id"),
            "time_in_hospital": pl.Series(clinical["time_in_hospital"]),
            "payer_code": drawn("payer_code"),
            "medical_specialty": drawn("medical_specialty"),
            "num_lab_procedures": pl.Series(clinical["num_lab_procedures"]),
            "num_procedures": coded("num_procedures"),
            **{name: pl.Series(clinical[name]) for name in
               ("num_medications", "number_outpatient", "number_emergency", "number_inpatient")},
        }
        for name, vocabulary in self.diag.items():
            columns[name] = drawn(name, vocabulary)
        columns["number_diagnoses"] = pl.Series(clinical["number_diagnoses"])
        columns["max_glu_serum"] = drawn("max_glu_serum")
        columns["A1Cresult"] = drawn("A1Cresult")
        for drug, level in drugs.items():
            columns[drug] = _strings(drug, ["Steady", "Up", "Down", "No"], level)
        change = any_change | (any_drug & (rng.random(n) < 0.30))
        columns["change"] = _strings("change", ["No", "Ch"], change.astype(np.int64))
        columns["diabetesMed"] = _strings("diabetesMed", ["No", "Yes"], any_drug.astype(np.int64))
        columns["readmitted"] = _strings("readmitted", ["<30", ">30", "NO"], readmitted)
        return pl.DataFrame({name: columns[name].alias(name) for name in RAW_SCHEMA})


def _drugs(rng: np.random.Generator, n: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Each drug's level (0 Steady, 1 Up, 2 Down, 3 No), and whether any is given / changed."""
    drugs: dict[str, np.ndarray] = {}
    any_drug = np.zeros(n, dtype=bool)
    any_change = np.zeros(n, dtype=bool)
    for drug in DRUG_COLUMNS:
        steady, up, down = _DRUG_USE[drug]
        level = np.searchsorted(np.cumsum([steady, up, down]) / 100.0, rng.random(n), side="right")
        drugs[drug] = level
        any_drug |= level < 3
        any_change |= (level == 1) | (level == 2)
    return drugs, any_drug, any_change


def _readmitted(rng: np.random.Generator, n: int, clinical: dict[str, np.ndarray], prior: np.ndarray,
                age: np.ndarray, any_drug: np.ndarray, frailty: np.ndarray) -> np.ndarray:
    """The label (0 ``<30``, 1 ``>30``, 2 ``NO``): a modest, honest signal plus frailty and noise."""
    discharge = clinical["discharge_disposition_id"]
    score = (
        0.45 * np.minimum(clinical["number_inpatient"], 8)
        + 0.20 * np.minimum(clinical["number_emergency"], 5)
        + 0.05 * clinical["time_in_hospital"]
        + 0.20 * np.minimum(prior, 5)
        + 0.35 * (discharge == 3)
        + 0.20 * np.isin(discharge, (2, 5, 22, 28))
        + 0.04 * age.astype(float)  # the age band, 0..9 in decade order
        + 0.015 * clinical["number_diagnoses"]
        + 0.12 * any_drug
        + 0.25 * frailty
    )
    p_early = 1.0 / (1.0 + np.exp(-(score - 3.32)))
    p_early[np.isin(discharge, sorted(DEATH_OR_HOSPICE_DISPOSITIONS))] = 0.0
    u = rng.random(n)
    p_late = 1.0 / (1.0 + np.exp(-(0.5 * score - 0.97)))
    return np.where(u < p_early, 0, np.where(rng.random(n) < p_late, 1, 2))


def write_synthetic(
    path: str | Path,
    *,
    rows: int,
    seed: int,
    with_snapshot: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    start: date = SNAPSHOT_START,
    end: date = SNAPSHOT_END,
) -> Path:
    """Write ``rows`` synthetic encounters to the CSV ``path`` and return it.

    ``with_snapshot`` adds the reference project's ``snapshot_date`` column (ISO dates spread
    evenly over ``start``..``end``, by default 1999-01-01..2008-12-31, in file order, which is
    encounter order). A shorter span gives fewer monthly partitions for the same rows.
    """
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator = _Generator(seed)
    n_days = (end - start).days + 1
    start_day = (start - date(1970, 1, 1)).days
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "wb") as fh:
        for index, offset in enumerate(range(0, rows, chunk_rows)):
            n = min(chunk_rows, rows - offset)
            frame = generator.chunk(index, n)
            if with_snapshot:
                day = (np.arange(offset, offset + n, dtype=np.int64) * n_days) // rows
                frame = frame.with_columns(
                    pl.Series("snapshot_date", (start_day + day).astype(np.int32)).cast(pl.Date)
                )
            frame.write_csv(fh, include_header=index == 0)
    tmp.replace(path)
    return path
