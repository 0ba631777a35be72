"""FHIR R4 -> the raw input contract (readmit.service.fhir): round trip on real UCI rows, every
refusal with its path, what becomes missing, and the fetch from a real loopback FHIR server."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import logging
import re
import socket
import subprocess
import sys
import zipfile

import polars as pl
import pytest

from readmit.data.features import HISTORY_INPUT_COLUMNS
from readmit.data.schema import DRUG_COLUMNS, RAW_SCHEMA, SNAPSHOT_COLUMN
from readmit.service.fhir import (
    PREFETCH_TEMPLATES,
    FhirRefused,
    FhirUnavailable,
    NotInpatient,
    complete_prefetch,
    map_prefetch,
)
from readmit.service.fhir import valuesets as vs
from readmit.service.fhir.mapping import NOT_IN_FHIR
from readmit.service.fhir.parse import HASHED_ID_BASE, integer_id
from readmit.serving.online import silver_rows
from service.fhir_bundles import bundle, context_of, prefetch_for, stay

# The contract columns the mapping fills from standard FHIR elements (readmitted is the label,
# never sent); the others (NOT_IN_FHIR) only from readmit's own Encounter extensions.
COVERED = {
    "encounter_id", "patient_nbr", "race", "gender", "age", "admission_type_id", "discharge_disposition_id",
    "admission_source_id", "time_in_hospital", "num_medications", "diag_1", "diag_2", "diag_3",
    "number_diagnoses", "max_glu_serum", "A1Cresult", *DRUG_COLUMNS, "change", "diabetesMed", SNAPSHOT_COLUMN,
}
CONTRACT = {*RAW_SCHEMA, SNAPSHOT_COLUMN} - {"readmitted"}

ROW = {
    **{d: "No" for d in DRUG_COLUMNS},
    "encounter_id": 1200, "patient_nbr": 77, "race": "AfricanAmerican", "gender": "Female", "age": "[70-80)",
    "weight": None, "admission_type_id": 1, "discharge_disposition_id": 1, "admission_source_id": 7,
    "time_in_hospital": 4, "payer_code": None, "medical_specialty": None, "num_lab_procedures": 40,
    "num_procedures": 1, "num_medications": 9, "number_outpatient": 0, "number_emergency": 0,
    "number_inpatient": 0, "diag_1": "428", "diag_2": "250.83", "diag_3": "V57", "number_diagnoses": 7,
    "max_glu_serum": "None", "A1Cresult": ">7", "metformin": "Up", "insulin": "Steady", "change": "Ch",
    "diabetesMed": "Yes", "readmitted": None, SNAPSHOT_COLUMN: "2008-05-20",
}
EARLIER = [
    {"encounter_id": 900, "patient_nbr": 77, SNAPSHOT_COLUMN: "2008-02-10", "time_in_hospital": 3, "admission_type_id": 2},
    {"encounter_id": 1100, "patient_nbr": 77, SNAPSHOT_COLUMN: "2008-05-16", "time_in_hospital": 2, "admission_type_id": 7},
    {"encounter_id": 1150, "patient_nbr": 77, SNAPSHOT_COLUMN: "2008-05-18", "time_in_hospital": 1, "admission_type_id": 1},
]


def mapped(prefetch: dict, row: dict = ROW):
    return map_prefetch(prefetch, str(row["patient_nbr"]), str(row["encounter_id"]))


def refused(prefetch: dict) -> FhirRefused:
    with pytest.raises(FhirRefused) as caught:
        mapped(prefetch)
    return caught.value


def fresh() -> dict:
    return prefetch_for(ROW, EARLIER)


# -- the round trip ---------------------------------------------------------------------------


def test_the_covered_columns_are_most_of_the_contract_and_the_rest_is_said_missing():
    assert COVERED | set(NOT_IN_FHIR) == CONTRACT and not COVERED & set(NOT_IN_FHIR)
    assert set(NOT_IN_FHIR) == {*vs.EXTENSION_INTEGERS, *vs.EXTENSION_STRINGS}
    assert len(COVERED) >= 0.8 * len(CONTRACT), (len(COVERED), len(CONTRACT))


def test_a_row_comes_back_with_its_history_point_in_time():
    out = mapped(fresh())
    assert {c: out.record[c] for c in CONTRACT} == {c: ROW[c] for c in CONTRACT}
    assert out.missing_fields() == ["weight", "payer_code", "medical_specialty"]  # None in ROW
    standard_only = mapped(prefetch_for(ROW, EARLIER, extensions=False))
    assert {c: standard_only.record[c] for c in COVERED} == {c: ROW[c] for c in COVERED}
    assert standard_only.missing_fields() == [c for c in RAW_SCHEMA if c in NOT_IN_FHIR]
    assert "nor sent as readmit's Encounter extension" in standard_only.missing[0]
    # 1100 ended 05-16, the day this stay began (05-16): before it; 1150 ended during it: not earlier
    assert [r["encounter_id"] for r in out.earlier] == [900, 1100]
    assert out.earlier[0] == EARLIER[0]
    # gold's date rule on request: 1150 ended during this stay, by its discharge day
    until_discharge = map_prefetch(fresh(), "77", "1200", history_until="discharge")
    assert [r["encounter_id"] for r in until_discharge.earlier] == [900, 1100, 1150]
    assert set(out.earlier[0]) == set(HISTORY_INPUT_COLUMNS)


def uci_rows(zip_path) -> pl.DataFrame:
    """Every real UCI encounter typed as the contract, dated as readmit's encounter_order does
    (1999-01-01..2008-12-31 in encounter_id order: the discharge day of each)."""
    with zipfile.ZipFile(zip_path) as zf:
        member = next(n for n in zf.namelist() if n.endswith("diabetic_data.csv"))
        raw = pl.read_csv(zf.read(member), infer_schema=False, null_values=["?"])
    typed = raw.select([pl.col(c).cast(t) for c, t in RAW_SCHEMA.items()])
    first, last = dt.date(1999, 1, 1), dt.date(2008, 12, 31)
    rank = pl.col("encounter_id").rank("ordinal").cast(pl.Int64) - 1
    days = rank * ((last - first).days + 1) // pl.len()
    return typed.with_columns((pl.lit(first) + pl.duration(days=days)).cast(pl.Date).alias(SNAPSHOT_COLUMN))


@pytest.mark.slow
def test_real_uci_rows_round_trip_through_fhir(uci_zip):
    """2,000 real encounters (the stays of randomly drawn patients, a third of them with several
    stays, in discharge order, cut at 2,000): row -> FHIR -> row, equal on every contract column
    (NOT_IN_FHIR through readmit's extensions); the history is the earlier stays that ended before
    this one began."""
    rows = uci_rows(uci_zip)
    stays = rows.group_by("patient_nbr").len()
    patients = pl.concat([stays.filter(pl.col("len") >= 2).sample(n=450, seed=20),
                          stays.filter(pl.col("len") == 1).sample(n=900, seed=20)])["patient_nbr"]
    sample = rows.filter(pl.col("patient_nbr").is_in(patients.implode())).sort(SNAPSHOT_COLUMN, "encounter_id")
    sample = sample.with_columns(pl.col(SNAPSHOT_COLUMN).cast(pl.String)).head(2000).to_dicts()
    assert len(sample) == 2000
    seen: dict[int, list[dict]] = {}
    wrong, records, with_history, overlaps = [], [], 0, 0
    for row in sample:
        earlier = seen.setdefault(row["patient_nbr"], [])
        out = map_prefetch(prefetch_for(row, earlier), str(row["patient_nbr"]), str(row["encounter_id"]))
        diff = {c: (row[c], out.record[c]) for c in CONTRACT if out.record[c] != row[c]}
        admitted = stay(row)[0].isoformat()
        expected = [{c: e[c] for c in HISTORY_INPUT_COLUMNS} for e in earlier if e[SNAPSHOT_COLUMN] <= admitted]
        said_missing = {c for c in CONTRACT if row[c] is None}
        if diff or out.earlier != expected or set(out.missing_fields()) != said_missing:
            wrong.append((row["encounter_id"], diff, out.earlier == expected, out.missing))
        with_history += bool(expected)
        if len(expected) < len(earlier):  # a stay that ended during this one: gold's date rule counts it
            overlaps += 1
            gold_rule = map_prefetch(prefetch_for(row, earlier), str(row["patient_nbr"]), str(row["encounter_id"]),
                                     history_until="discharge")
            if gold_rule.earlier != [{c: e[c] for c in HISTORY_INPUT_COLUMNS} for e in earlier]:
                wrong.append((row["encounter_id"], "history_until=discharge"))
        records.append(out.record)
        earlier.append(row)
    assert wrong == [], wrong[:5]
    assert with_history > 100 and overlaps > 0  # the history paths are exercised, not only first stays
    assert silver_rows(records).height == len(records)  # the contract's own checks pass every row


# -- refusals, each with its path ---------------------------------------------------------------


def test_a_resource_of_the_wrong_type_is_refused_at_its_path():
    prefetch = fresh()
    prefetch["patient"] = prefetch["encounter"]
    assert refused(prefetch).path == "prefetch.patient.resourceType"
    prefetch = fresh()
    prefetch["conditions"]["entry"][1]["resource"] = fresh()["patient"]
    assert refused(prefetch).path == "prefetch.conditions.entry[1].resource.resourceType"


def test_a_resource_of_another_patient_is_refused_without_echoing_ids():
    prefetch = fresh()
    prefetch["conditions"]["entry"][2]["resource"]["subject"] = {"reference": "Patient/4242"}
    error = refused(prefetch)
    assert error.path == "prefetch.conditions.entry[2].resource.subject.reference"
    assert "4242" not in str(error) and "77" not in str(error)
    prefetch = fresh()
    prefetch["patient"]["id"] = "78"
    assert refused(prefetch).path == "prefetch.patient.id"
    prefetch = fresh()
    prefetch["medications"]["entry"][0]["resource"]["encounter"] = {"reference": "Encounter/5"}
    assert refused(prefetch).path == "prefetch.medications.entry[0].resource.encounter.reference"
    prefetch = fresh()
    prefetch["encounters"]["entry"][1]["resource"]["subject"] = {"reference": "Patient/5"}
    assert refused(prefetch).path == "prefetch.encounters.entry[1].resource.subject.reference"


@pytest.mark.parametrize(("where", "value", "path"), [
    (("encounter", "period", "start"), "last tuesday", "prefetch.encounter.period.start"),
    (("encounter", "period", "start"), "2008", "prefetch.encounter.period.start"),
    (("encounter", "period", "end"), "2008-05-01", "prefetch.encounter.period.end"),
    (("encounter", "diagnosis"), {"rank": 1}, "prefetch.encounter.diagnosis"),
    (("patient", "gender"), 3, "prefetch.patient.gender"),
    (("conditions", "entry"), [17], "prefetch.conditions.entry[0]"),
    (("observations",), [], "prefetch.observations"),
    (("medications", "entry", 0, "resource", "status"), None, "prefetch.medications.entry[0].resource.status"),
])
def test_a_malformed_structure_is_refused_at_its_path(where, value, path):
    prefetch = fresh()
    target = prefetch
    for part in where[:-1]:
        target = target[part]
    target[where[-1]] = value
    assert refused(prefetch).path == path


@pytest.mark.parametrize(("edit", "path"), [
    (lambda p: p["conditions"]["entry"][0]["resource"].update(code={"coding": [
        {"system": "http://snomed.info/sct", "code": "84114007"}]}), "prefetch.conditions.entry[0].resource.code.coding"),
    (lambda p: p["encounter"]["priority"]["coding"][0].update(system="http://example.org/local"),
     "prefetch.encounter.priority.coding"),
    (lambda p: p["encounter"]["hospitalization"]["admitSource"]["coding"][0].update(
        system=vs.uci_system("admission_source_id"), code="16"),
     "prefetch.encounter.hospitalization.admitSource.coding[0].code"),
    (lambda p: p["medications"]["entry"][0]["resource"]["medicationCodeableConcept"]["coding"][0].update(
        system="http://hl7.org/fhir/sid/ndc"), "prefetch.medications.entry[0].resource.medicationCodeableConcept.coding"),
    (lambda p: p["observations"]["entry"][0]["resource"]["code"]["coding"][0].update(system="urn:local"),
     "prefetch.observations.entry[0].resource.code.coding"),
    (lambda p: p["observations"]["entry"][0]["resource"]["valueQuantity"].update(code="mmol/mol", unit="mmol/mol"),
     "prefetch.observations.entry[0].resource.valueQuantity.code"),
    (lambda p: p["patient"]["extension"][0]["extension"][0]["valueCoding"].update(system="urn:local"),
     "prefetch.patient.extension[0].extension[0].valueCoding.system"),
])
def test_a_code_of_an_unknown_system_is_refused_at_its_path(edit, path):
    prefetch = fresh()
    edit(prefetch)
    assert refused(prefetch).path == path


def test_readmit_extensions_of_the_wrong_value_type_are_refused():
    prefetch = fresh()
    extensions = prefetch["encounter"]["extension"]
    i = next(i for i, e in enumerate(extensions) if e["url"] == vs.uci_extension("number_inpatient"))
    extensions[i] = {"url": vs.uci_extension("number_inpatient"), "valueString": "2"}
    assert refused(prefetch).path == f"prefetch.encounter.extension[{i}].valueInteger"


def test_a_medication_by_reference_and_diagnoses_of_two_systems_are_refused():
    prefetch = fresh()
    request = prefetch["medications"]["entry"][0]["resource"]
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": "Medication/1"}
    assert refused(prefetch).path == "prefetch.medications.entry[0].resource.medicationReference"
    prefetch = fresh()
    prefetch["conditions"]["entry"][1]["resource"]["code"] = {"coding": [{"system": vs.ICD10CM, "code": "E11.9"}]}
    assert refused(prefetch).path == "prefetch.conditions.entry[1].resource.code.coding"


def test_an_encounter_that_is_not_an_inpatient_stay_is_outside_intended_use():
    prefetch = fresh()
    prefetch["encounter"]["class"]["code"] = "AMB"
    with pytest.raises(NotInpatient) as caught:
        mapped(prefetch)
    assert caught.value.path == "prefetch.encounter.class.code"
    prefetch = fresh()
    prefetch["encounter"]["status"] = "entered-in-error"
    assert refused(prefetch).path == "prefetch.encounter.status"


def test_the_patient_and_the_encounter_are_required():
    for key in ("patient", "encounter"):
        prefetch = fresh()
        prefetch[key] = None
        assert refused(prefetch).path == f"prefetch.{key}"


# -- what becomes missing, and why ---------------------------------------------------------------


def test_keys_not_had_make_their_columns_missing_not_guessed():
    prefetch = {**fresh(), "conditions": None, "medications": None, "observations": None, "encounters": None}
    out = mapped(prefetch)
    assert {"diag_1", "diag_2", "diag_3", "number_diagnoses", "A1Cresult", "max_glu_serum", "change",
            "diabetesMed", "num_medications", *DRUG_COLUMNS} <= set(out.missing_fields())
    assert all(out.record[c] is None for c in out.missing_fields())
    assert out.earlier == [] and out.record["age"] == ROW["age"]


def test_unmappable_values_are_missing_with_their_reason():
    prefetch = fresh()
    prefetch["encounter"]["hospitalization"]["dischargeDisposition"] = {"coding": [
        {"system": vs.DISCHARGE_DISPOSITION, "code": "oth"}]}
    prefetch["patient"]["gender"] = "other"
    prefetch["patient"]["birthDate"] = "1933"  # admitted 2008-05-16: 74 or 75, one band
    prefetch["patient"]["extension"][0]["extension"][0]["valueCoding"] = {"system": vs.NULL_FLAVOR, "code": "ASKU"}
    out = mapped(prefetch)
    assert out.record["age"] == "[70-80)"
    why = dict(m.split(": ", 1) for m in out.missing)
    assert "'oth' names no UCI code" in why["discharge_disposition_id"]
    assert why["gender"] == "Patient.gender is other"
    assert "unknown" in why["race"]
    prefetch["patient"]["birthDate"] = "1938"  # 69 or 70: two bands
    assert "age" in mapped(prefetch).missing_fields()
    prefetch["encounter"]["period"] = {"start": "2008-12-30", "end": "2009-01-02"}
    prefetch["patient"]["birthDate"] = "1928-12"  # 80 if born by the 30th, 79 on the 31st
    assert "age" in mapped(prefetch).missing_fields()
    prefetch["patient"]["birthDate"] = "1928-11"
    assert mapped(prefetch).record["age"] == "[80-90)"


def test_the_ucI_coding_wins_over_the_standard_one_and_hispanic_is_the_ethnicity():
    prefetch = fresh()
    prefetch["encounter"]["hospitalization"]["dischargeDisposition"]["coding"].append(
        {"system": vs.uci_system("discharge_disposition_id"), "code": "14"})
    prefetch["patient"]["extension"].append({"url": vs.US_CORE_ETHNICITY, "extension": [
        {"url": "ombCategory", "valueCoding": {"system": vs.OMB_RACE, "code": "2135-2"}}]})
    out = mapped(prefetch)
    assert out.record["discharge_disposition_id"] == 14 and out.record["race"] == "Hispanic"


def test_a_stay_not_discharged_yet_has_no_length_unless_the_discharge_time_is_given():
    prefetch = fresh()
    del prefetch["encounter"]["period"]["end"]
    prefetch["encounter"]["status"] = "in-progress"
    assert {"time_in_hospital", SNAPSHOT_COLUMN} <= set(mapped(prefetch).missing_fields())
    out = map_prefetch(prefetch, "77", "1200", discharged_at=dt.datetime(2008, 5, 21, 10, tzinfo=dt.UTC))
    assert (out.record["time_in_hospital"], out.record[SNAPSHOT_COLUMN]) == (5, "2008-05-21")


# -- medications -------------------------------------------------------------------------------


def _requests(prefetch: dict) -> list[dict]:
    return [e["resource"] for e in prefetch["medications"]["entry"]]


def test_dose_changes_follow_prior_prescriptions():
    prefetch = fresh()
    assert mapped(prefetch).record["metformin"] == "Up"
    final = next(r for r in _requests(prefetch) if r["id"] == "1200-metformin")
    final["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 250
    assert mapped(prefetch).record["metformin"] == "Down"
    final["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 500
    out = mapped(prefetch)
    assert out.record["metformin"] == "Steady" and out.record["change"] == "No"
    final["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"].update(code="g", unit="g")
    out = mapped(prefetch)
    assert out.record["metformin"] is None and {"metformin", "change"} <= set(out.missing_fields())
    final["priorPrescription"] = {"reference": "MedicationRequest/elsewhere"}
    assert "metformin" in mapped(prefetch).missing_fields()


def test_a_switch_of_drug_is_a_change_and_cancelled_requests_do_not_count():
    prefetch = fresh()
    requests = _requests(prefetch)
    insulin = next(r for r in requests if r["id"] == "1200-insulin")
    prefetch["medications"]["entry"] = [e for e in prefetch["medications"]["entry"]
                                        if e["resource"]["id"] not in ("1200-metformin", "1200-metformin-0")]
    out = mapped(prefetch)
    assert (out.record["metformin"], out.record["change"], out.record["num_medications"]) == ("No", "No", 8)
    switched = copy.deepcopy(insulin)
    switched.update(id="1200-glipizide-0", status="stopped",
                    medicationCodeableConcept={"coding": [{"system": vs.RXNORM, "code": "4821"}]})
    insulin["priorPrescription"] = {"reference": "MedicationRequest/1200-glipizide-0"}
    prefetch["medications"]["entry"].append({"resource": switched})
    out = mapped(prefetch)
    assert (out.record["glipizide"], out.record["insulin"], out.record["change"]) == ("No", "Steady", "Ch")
    insulin["status"] = "entered-in-error"
    switched["status"] = "cancelled"
    out = mapped(prefetch)
    assert (out.record["insulin"], out.record["glipizide"], out.record["change"]) == ("No", "No", "No")


def test_a_combination_is_its_own_column_and_examide_is_always_no():
    prefetch = fresh()
    request = _requests(prefetch)[-1]
    request["medicationCodeableConcept"] = {"coding": [{"system": vs.RXNORM, "code": "6809"},
                                                       {"system": vs.RXNORM, "code": "4815"}]}
    out = mapped(prefetch)
    assert out.record["glyburide-metformin"] == "Steady" and out.record["examide"] == "No"


# -- observations ------------------------------------------------------------------------------
_IDS = itertools.count(1)


def _observation(code: str, value: float, unit: str, when: str, comparator: str | None = None) -> dict:
    quantity = {"value": value, "unit": unit, "system": vs.UCUM, "code": unit}
    if comparator:
        quantity["comparator"] = comparator
    return {"resourceType": "Observation", "id": f"o{code}-{next(_IDS)}", "status": "final",
            "code": {"coding": [{"system": vs.LOINC, "code": code}]}, "subject": {"reference": "Patient/77"},
            "effectiveDateTime": when, "valueQuantity": quantity}


def test_results_of_the_stay_give_the_highest_band_and_others_are_ignored():
    prefetch = fresh()
    prefetch["observations"] = bundle([
        _observation("4548-4", 6.5, "%", "2008-05-17T08:00:00Z"),
        _observation("4548-4", 8.4, "%", "2008-05-19T08:00:00Z"),
        _observation("4548-4", 12.0, "%", "2008-01-02T08:00:00Z"),  # an earlier stay's
        _observation("2345-7", 12.5, "mmol/L", "2008-05-18T08:00:00Z"),  # 225 mg/dL
    ])
    out = mapped(prefetch)
    assert (out.record["A1Cresult"], out.record["max_glu_serum"]) == (">8", ">200")
    prefetch["observations"] = bundle([_observation("4548-4", 14, "%", "2008-05-17", ">"),
                                       _observation("2345-7", 250, "mg/dL", "2008-05-17", "<")])
    out = mapped(prefetch)
    assert out.record["A1Cresult"] == ">8" and "max_glu_serum" in out.missing_fields()
    prefetch["observations"] = bundle([])
    assert mapped(prefetch).record["A1Cresult"] == "None"  # not measured: UCI's own category


# -- ids and the history -----------------------------------------------------------------------


def test_non_numeric_ids_get_a_stable_integer_consistent_across_resources():
    assert integer_id("Patient", "12") == 12
    uuid = "6f1c2a9e-patient"
    assert integer_id("Patient", uuid) == integer_id("Patient", uuid) >= HASHED_ID_BASE
    assert integer_id("Patient", uuid) != integer_id("Encounter", uuid)
    prefetch = fresh()
    for resource in [prefetch["patient"]]:
        resource["id"] = uuid
    text = repr(prefetch).replace("Patient/77", f"Patient/{uuid}")
    prefetch = eval(text)  # noqa: S307 (a repr of plain dicts and strings made here)
    out = map_prefetch(prefetch, uuid, "1200")
    assert out.record["patient_nbr"] == integer_id("Patient", uuid)
    assert {r["patient_nbr"] for r in out.earlier} == {out.record["patient_nbr"]}


def test_the_history_leaves_out_cancelled_ongoing_and_outpatient_stays():
    prefetch = fresh()
    others = [e["resource"] for e in prefetch["encounters"]["entry"]]
    others[1]["status"] = "cancelled"
    ongoing = copy.deepcopy(others[1])
    ongoing.update(id="1000", status="in-progress", period={"start": "2008-03-01"})
    visit = copy.deepcopy(others[2])
    visit.update(id="1010", **{"class": {"system": vs.ACT_CODE, "code": "AMB"}}, period={"start": "2008-04-01",
                                                                                      "end": "2008-04-01"})
    prefetch["encounters"]["entry"] += [{"resource": ongoing}, {"resource": visit}]
    assert [r["encounter_id"] for r in mapped(prefetch).earlier] == [1100]


def test_importing_the_package_loads_neither_fhir_resources_nor_httpx():
    code = ("import sys, readmit.service, readmit.service.fhir; "
            "assert not {'fhir.resources', 'httpx', 'pydantic'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the fetch -----------------------------------------------------------------------------------


def test_absent_and_null_keys_are_fetched_from_the_allowed_server_with_the_bearer(fhir_server, caplog):
    caplog.set_level(logging.DEBUG)
    full = fresh()
    context = context_of(ROW)
    fhir_server.serve(full, context)
    given = {"patient": full["patient"], "encounter": None, "medications": full["medications"]}
    token = "secret-access-token-9f8e7d"
    out = complete_prefetch(given, context, fhir_server.base + "/", {"access_token": token, "token_type": "Bearer"},
                            [fhir_server.base], timeout_s=10)
    assert out == full
    fetched = sorted(s.path.strip("/").split("/")[0] for s in fhir_server.seen)
    assert fetched == ["Condition", "Encounter", "Encounter", "Observation"]
    assert {s.authorization for s in fhir_server.seen} == {f"Bearer {token}"}
    assert mapped(out).record == mapped(full).record
    assert token not in caplog.text
    # no ids (URLs hold them); the id as a number of its own, not digits inside a logged float
    # such as httpcore's timeout=9.945892312000069
    assert not re.search(r"(?<![\d.])1200(?!\d)", caplog.text) and "Patient/77" not in caplog.text


def test_search_pages_are_followed(fhir_server):
    fhir_server.page_size = 2
    full = fresh()
    fhir_server.serve(full, context_of(ROW))
    out = complete_prefetch({}, context_of(ROW), fhir_server.base, None, [fhir_server.base], timeout_s=10)
    assert [e["resource"]["id"] for e in out["medications"]["entry"]] == [
        e["resource"]["id"] for e in full["medications"]["entry"]]
    assert any(s.path.startswith("/page/") for s in fhir_server.seen)


def test_a_server_not_on_the_allowlist_is_refused_without_a_connection(accept_recorder, fhir_server):
    with pytest.raises(FhirRefused) as caught:
        complete_prefetch({"patient": None}, context_of(ROW), accept_recorder.url, {"access_token": "t"},
                          [fhir_server.base, accept_recorder.url + "/other"], timeout_s=5)
    assert caught.value.path == "fhirServer"
    with socket.create_connection(("127.0.0.1", accept_recorder.port)) as probe:
        assert accept_recorder.first_connection_is(probe)
    assert fhir_server.seen == []


def test_the_recorder_sees_a_connection_to_an_allowed_server(accept_recorder):
    """The control of the two tests around it: a fetch that does connect is seen first."""
    with pytest.raises(FhirUnavailable, match="could not be reached|answered"):
        complete_prefetch({}, context_of(ROW), accept_recorder.url, None, [accept_recorder.url], timeout_s=5)
    with socket.create_connection(("127.0.0.1", accept_recorder.port)) as probe:
        assert not accept_recorder.first_connection_is(probe)


def test_nothing_to_fetch_opens_no_connection_whatever_the_server(accept_recorder):
    full = fresh()
    assert complete_prefetch(full, context_of(ROW), accept_recorder.url, None, [], timeout_s=5) == full
    with socket.create_connection(("127.0.0.1", accept_recorder.port)) as probe:
        assert accept_recorder.first_connection_is(probe)


def test_a_hanging_server_times_out_and_the_data_is_unavailable(fhir_server):
    fhir_server.hang = True
    with pytest.raises(FhirUnavailable, match="took longer than 0.5 s"):
        complete_prefetch({}, context_of(ROW), fhir_server.base, None, [fhir_server.base], timeout_s=0.5)


def test_a_required_key_missing_on_the_server_is_unavailable_an_optional_one_none(fhir_server):
    full = fresh()
    fhir_server.serve({k: v for k, v in full.items() if k != "observations"}, context_of(ROW))
    out = complete_prefetch({}, context_of(ROW), fhir_server.base, None, [fhir_server.base], timeout_s=10)
    assert out["observations"] is None and out["patient"] == full["patient"]
    with pytest.raises(FhirUnavailable, match=r"prefetch.patient: the FHIR server answered 404"):
        complete_prefetch({}, {"patientId": "5", "encounterId": "6"}, fhir_server.base, None,
                          [fhir_server.base], timeout_s=10)
    with pytest.raises(FhirUnavailable, match="no fhirServer"):
        complete_prefetch({"patient": full["patient"]}, context_of(ROW), None, None, [], timeout_s=10)


def test_context_ids_that_are_not_fhir_ids_are_refused_before_any_request(fhir_server):
    with pytest.raises(FhirRefused) as caught:
        complete_prefetch({}, {"patientId": "../admin", "encounterId": "1"}, fhir_server.base, None,
                          [fhir_server.base], timeout_s=5)
    assert caught.value.path == "context.patientId" and fhir_server.seen == []


def test_the_templates_are_the_agreed_ones():
    assert PREFETCH_TEMPLATES["observations"].endswith("code=http://loinc.org|4548-4,http://loinc.org|2345-7")
    assert set(PREFETCH_TEMPLATES) == {"patient", "encounter", "conditions", "medications", "observations",
                                       "encounters"}
