"""The CDS Hooks 2.0 service over real HTTP: an EHR's real signed JWTs (keys made here, JWKS
served on loopback), real FHIR R4 prefetch made from encounter rows, real uvicorn.

One server for the module (models of synthetic raw data, ``serve_models``); every token is new
(its own jti), so the tests do not lean on each other.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from pathlib import Path

import jwt
import pytest

from read_only import writable_copy
from readmit.data.layers import BRONZE_TABLE
from readmit.registry import Registry
from readmit.registry.aliases import set_alias
from readmit.service.app import create_app
from readmit.storage import Storage
from service.cds_hooks_schema import DISCOVERY, RESPONSE, check
from service.ehr_keys import Ehr, JwksServer
from service.fhir_bundles import prefetch_for
from service.live_server import TOKEN, LiveServer, auth, copy_datamart, free_port, raw_records
from serving.model_fixtures import Served

MONTH = "2008-12"
TENANT = "hospital-a"
SERVICE = "/cds-services/encounter-discharge"


@pytest.fixture(scope="module")
def ehr():
    ehr = Ehr()
    jwks = JwksServer(ehr)
    ehr.jwks_server = jwks
    yield ehr
    jwks.stop()


@pytest.fixture(scope="module")
def cds(serve_models, ehr, tmp_path_factory):
    """The service with CDS Hooks on: the EHR trusted, a tenant required, follow-up suggested
    for the high bands; champion XGBoost; an API token too (to compare with /v1/score)."""
    root = tmp_path_factory.mktemp("cds")
    datamart = copy_datamart(serve_models.datamart, root / "datamart")
    writable_copy(serve_models.registry, root / "registry")
    s = Served(serve_models.config, datamart, str(root / "registry"), serve_models.raw)
    set_alias(Registry(s.registry), "champion", "xgboost", s.models()["xgboost"], reason="tests", by="tests")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = s.settings({"serve_config": {"max_body_bytes": 1_000_000, "cds_hooks": {
        "enabled": True, "base_url": base, "tenant": TENANT, "jwks_min_refetch_s": 0,
        "issuers": [{"iss": ehr.iss, "jwks_url": f"{ehr.jwks_server.url}/jwks.json"}],
        "follow_up_bands": ["moderate", "high", "very_high"]}}}, tmp=root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("READMIT_API_TOKENS", f"tests={TOKEN}")
        app = create_app(settings)
    live = LiveServer(app, port=port)
    assert live.wait_ready().status_code == 200
    live.settings, live.base = settings, base
    yield live
    live.stop()


def bearer(cds, ehr, path: str, **kw) -> dict[str, str]:
    return {"Authorization": f"Bearer {ehr.token(cds.base + path, tenant=TENANT, **kw)}"}


def earlier_of(record: dict, records: list[dict]) -> list[dict]:
    """The patient's stays before ``record`` (by date, then encounter_id), as batch counts them."""
    key = (record["snapshot_date"], record["encounter_id"])
    return [r for r in records if r["patient_nbr"] == record["patient_nbr"]
            and (r["snapshot_date"], r["encounter_id"]) < key]


def hook_body(record: dict, earlier: list[dict], hook: str = "encounter-discharge", *,
              extensions: bool = True) -> dict:
    prefetch = prefetch_for(record, earlier, extensions=extensions)
    return {"hook": hook, "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/77", "patientId": prefetch["patient"]["id"],
                        "encounterId": prefetch["encounter"]["id"]},
            "prefetch": prefetch}


@pytest.fixture(scope="module")
def records(cds):
    everything = raw_records(cds.settings.datamart_uri, sorted(_months(cds.settings.datamart_uri)))
    return everything


def _months(datamart: str) -> set[str]:
    return set(Storage(datamart).list_partitions(BRONZE_TABLE))  # (its tables are links: no rglob)


def diabetic(records: list[dict], month: str = MONTH) -> list[dict]:
    def is_diabetes(code: str | None) -> bool:
        return bool(code) and (code.startswith("250") or code[:3] in {"E08", "E09", "E10", "E11", "E13"})

    return [r for r in records if r["snapshot_date"].startswith(month) and r["discharge_disposition_id"] not in
            (11, 13, 14, 19, 20, 21) and any(is_diabetes(r[c]) for c in ("diag_1", "diag_2", "diag_3"))]


# -- who may call ------------------------------------------------------------------------------
def test_discovery_lists_both_hooks_with_their_prefetch(cds, ehr):
    answer = cds.client.get("/cds-services", headers=bearer(cds, ehr, "/cds-services"))
    assert answer.status_code == 200, answer.text
    check(DISCOVERY, answer.json())
    services = {s["id"]: s for s in answer.json()["services"]}
    assert set(services) == {"encounter-discharge", "patient-view"}
    assert services["encounter-discharge"]["hook"] == "encounter-discharge"
    for service in services.values():
        assert {"patient", "encounter", "conditions", "medications", "observations", "encounters"} <= set(
            service["prefetch"]) and "diabetic" in service["usageRequirements"]


def test_every_refusal_is_a_bare_401_and_no_token_is_logged(cds, ehr, caplog):
    aud = cds.base + "/cds-services"
    now = int(time.time())
    stranger = Ehr("https://ehr.stranger.example")
    good = ehr.token(aud, tenant=TENANT)
    assert cds.client.get("/cds-services", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    claims = {"iss": ehr.iss, "aud": aud, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex, "tenant": TENANT}
    refused = {
        "no header": None,
        "not a JWT": "not-a-jwt",
        "replayed jti": good,
        "bad signature": ehr.token(aud, key=stranger.keys["ec-1"][1], alg="ES384", tenant=TENANT),
        "wrong aud": ehr.token(cds.base + "/cds-services/other", tenant=TENANT),
        "another host's aud": ehr.token("https://cds.elsewhere.example/cds-services", tenant=TENANT),
        "expired": ehr.token(aud, lifetime=5, iat_offset=-600, tenant=TENANT),
        "issued in the future": ehr.token(aud, iat_offset=3600, tenant=TENANT),
        "lifetime past the limit": ehr.token(aud, lifetime=86_400, tenant=TENANT),
        "no jti": ehr.token(aud, jti=None, tenant=TENANT),
        "no exp": ehr.token(aud, exp=None, tenant=TENANT),
        "wrong tenant": ehr.token(aud, tenant="hospital-b"),
        "no tenant": ehr.token(aud),
        "alg none": jwt.encode(claims, None, algorithm="none", headers={"kid": "ec-1"}),
        "HS256": jwt.encode({**claims, "jti": uuid.uuid4().hex}, "k" * 64, algorithm="HS256", headers={"kid": "ec-1"}),
        "ES256 (not allowed)": _es256(claims),
        "unknown issuer": stranger.token(aud, tenant=TENANT),
        "unknown kid": ehr.token(aud, key=stranger.keys["ec-1"][1], alg="ES384", headers={"kid": "ec-unknown"},
                                 tenant=TENANT),
        "basic auth": "Basic dXNlcjpwYXNz",
    }
    caplog.set_level(logging.INFO)
    for case, token in refused.items():
        headers = {} if token is None else {"Authorization": token if token.startswith("Basic") else f"Bearer {token}"}
        for method, path in (("GET", "/cds-services"), ("POST", SERVICE), ("POST", f"{SERVICE}/feedback")):
            answer = cds.client.request(method, path, headers=headers, json={"hook": "x"})
            assert answer.status_code == 401, (case, path, answer.status_code)
            assert answer.content == b"", (case, answer.text)  # nothing echoed
    for token in refused.values():
        if token is not None and len(token) > 20:
            signature = token.split(".")[-1]
            assert token not in caplog.text and (not signature or signature not in caplog.text)


def _es256(claims: dict) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "ec-1"})


def test_rs384_and_a_rotated_key_are_accepted_and_an_unknown_kid_refetches_once(cds, ehr):
    # the key set is fetched by the first call on this server, whichever test makes it (a worker
    # of `pytest -n 2` may run this test first)
    assert cds.client.get("/cds-services", headers=bearer(cds, ehr, "/cds-services", kid="rsa-1")).status_code == 200
    before = ehr.jwks_server.fetches
    assert before >= 1
    assert cds.client.get("/cds-services", headers=bearer(cds, ehr, "/cds-services", kid="rsa-1")).status_code == 200
    assert ehr.jwks_server.fetches == before  # a known kid: the cached set
    ehr.add_key("ec-2", "ES384")  # the EHR rotates its key
    assert cds.client.get("/cds-services", headers=bearer(cds, ehr, "/cds-services", kid="ec-2")).status_code == 200
    assert ehr.jwks_server.fetches == before + 1


def test_replicas_sharing_redis_accept_a_jti_once_between_them(ehr, redis_server):
    from readmit.config import CdsHooksSection
    from readmit.service.cds_hooks.trust import ClientTrust, Refused

    config = CdsHooksSection(enabled=True, base_url="https://cds.example.org", issuers=[
        {"iss": ehr.iss, "jwks_url": f"{ehr.jwks_server.url}/jwks.json"}])
    one, two = ClientTrust(config, redis_server.url), ClientTrust(config, redis_server.url)
    aud = ["https://cds.example.org/cds-services"]
    token = f"Bearer {ehr.token(aud[0])}"
    assert one.verify(token, aud)["iss"] == ehr.iss
    with pytest.raises(Refused, match="replayed"):
        two.verify(token, aud)
    assert two.verify(f"Bearer {ehr.token(aud[0])}", aud)["iss"] == ehr.iss  # a fresh jti passes


# -- the hook --------------------------------------------------------------------------------
UNCOVERED = ("weight", "payer_code", "medical_specialty", "num_lab_procedures", "num_procedures",
             "number_outpatient", "number_emergency", "number_inpatient")


@pytest.mark.parametrize("extensions", [True, False], ids=["with-readmit-extensions", "standard-fhir-only"])
def test_a_discharge_gets_one_card_that_fits_the_spec_and_says_the_batch_risk(cds, ehr, records, extensions):
    sample = diabetic(records)[:16]
    assert len(sample) >= 12
    risks = 0
    # Standard FHIR has no element for weight, payer, specialty, lab/procedure counts or prior-year
    # visit counts: with readmit's Encounter extensions they arrive and the card has batch's risk
    # for the whole row; without them they are missing, the card says so, and its risk is batch's
    # for the row as FHIR carries it.
    as_fhir = sample if extensions else [{**r, **dict.fromkeys(UNCOVERED)} for r in sample]
    scored = cds.client.post("/v1/score", json={"encounters": as_fhir}, headers=auth()).json()["predictions"]
    for record, expected in zip(sample, scored, strict=True):
        answer = cds.client.post(SERVICE, json=hook_body(record, earlier_of(record, records), extensions=extensions),
                                 headers=bearer(cds, ehr, SERVICE))
        assert answer.status_code == 200, answer.text
        check(RESPONSE, answer.json())
        [card] = answer.json()["cards"]
        if "extension" not in card:  # outside the intended use as FHIR carries it (e.g. not an inpatient class)
            assert card["indicator"] == "info" and "intended use" in card["summary"], card
            continue
        risks += 1
        scored_card = card
        machine = card["extension"]["org.readmit.prediction"]
        assert abs(machine["risk"] - expected["risk"]) <= 1e-9, record["encounter_id"]
        assert machine["top_reasons"] == expected["top_reasons"]
        band = expected["risk_band"]
        assert card["summary"] == f"30-day readmission risk {expected['risk'] * 100:.0f}% — {band.replace('_', ' ')}"
        assert len(card["summary"]) < 140
        assert card["indicator"] == {"low": "info", "moderate": "warning", "high": "critical",
                                     "very_high": "critical"}[band]
        assert ("suggestions" in card) == (band in ("moderate", "high", "very_high"))
        for feature in expected["top_reasons"]:
            assert "_" not in feature or feature not in card["detail"]  # words, not column names
        assert f"version {expected['version']}" in card["detail"] and "[model card](" in card["detail"]
        missing = set(machine["missing"])
        blank_in_row = {c for c in record if record[c] in (None, "?")}  # missing in the extract itself
        assert (set(UNCOVERED) <= missing) if not extensions else not (set(UNCOVERED) & missing - blank_in_row), missing
        assert ("Missing from the record" in card["detail"]) == bool(missing)
    assert risks >= 8, risks
    link = scored_card["links"][0]["url"]
    page = cds.client.get(link.removeprefix(cds.base))  # a browser opens it: no token
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/markdown")
    assert expected["version"] in page.text


def test_a_suggestion_is_a_follow_up_service_request_within_7_days(cds, ehr, records):
    for record in diabetic(records):
        answer = cds.client.post(SERVICE, json=hook_body(record, earlier_of(record, records)),
                                 headers=bearer(cds, ehr, SERVICE)).json()
        card = answer["cards"][0]
        if "suggestions" in card:
            break
    else:
        pytest.fail("no encounter of the sample is in a band with a follow-up")
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    resource = action["resource"]
    assert card["selectionBehavior"] == "at-most-one" and action["type"] == "create"
    assert resource["resourceType"] == "ServiceRequest" and resource["intent"] == "proposal"
    assert resource["subject"]["reference"] == f"Patient/{hook_body(record, [])['context']['patientId']}"
    start, end = resource["occurrencePeriod"]["start"], resource["occurrencePeriod"]["end"]
    from datetime import date

    assert (date.fromisoformat(end) - date.fromisoformat(start)).days == 7


def test_patient_view_scores_the_encounter_in_context_and_without_one_says_nothing(cds, ehr, records):
    record = diabetic(records)[0]
    path = "/cds-services/patient-view"
    body = hook_body(record, earlier_of(record, records), hook="patient-view")
    discharge = cds.client.post(SERVICE, json={**body, "hook": "encounter-discharge"},
                                headers=bearer(cds, ehr, SERVICE)).json()["cards"][0]
    viewed = cds.client.post(path, json=body, headers=bearer(cds, ehr, path))
    assert viewed.status_code == 200, viewed.text
    [card] = viewed.json()["cards"]
    assert card["summary"] == discharge["summary"] and card["uuid"] != discharge["uuid"]
    no_encounter = {**body, "context": {k: v for k, v in body["context"].items() if k != "encounterId"}}
    empty = cds.client.post(path, json=no_encounter, headers=bearer(cds, ehr, path))
    assert empty.status_code == 200 and empty.json() == {"cards": []}
    wrong_hook = cds.client.post(path, json={**body, "hook": "encounter-discharge"}, headers=bearer(cds, ehr, path))
    assert wrong_hook.status_code == 400


def test_every_call_is_audited_with_its_hook_instance_and_card_but_no_identifier(cds, ehr, records):
    record = diabetic(records)[0]
    body = hook_body(record, earlier_of(record, records))
    answer = cds.client.post(SERVICE, json=body, headers=bearer(cds, ehr, SERVICE)).json()
    card = answer["cards"][0]["uuid"]
    found = [p for p in Path(cds.settings.registry_uri).rglob("audit/online/*/*.json")
             if body["hookInstance"] in p.read_text()]
    [path] = found
    audit = json.loads(path.read_text())
    assert audit["card"] == card and audit["hookInstance"] == body["hookInstance"] and audit["token"] == ehr.iss
    assert audit["endpoint"] == "cds-hooks" and audit["rows"][0]["risk"] == answer["cards"][0]["extension"][
        "org.readmit.prediction"]["risk"]
    text = path.read_text()
    assert str(record["encounter_id"]) not in text and str(record["patient_nbr"]) not in text
    assert body["context"]["patientId"] not in text


def test_outside_the_intended_use_an_info_card_says_why_and_gives_no_risk(cds, ehr, records):
    record = diabetic(records)[0]
    not_diabetic = {**record, "diag_1": "428", "diag_2": "401", "diag_3": "486"}
    hospice = {**record, "discharge_disposition_id": 13}
    for case, why in ((not_diabetic, "diabetes"), (hospice, "hospice")):
        answer = cds.client.post(SERVICE, json=hook_body(case, []), headers=bearer(cds, ehr, SERVICE))
        assert answer.status_code == 200, answer.text
        check(RESPONSE, answer.json())
        [card] = answer.json()["cards"]
        assert card["indicator"] == "info" and why in card["detail"] and "%" not in card["summary"]
        assert "extension" not in card


def test_malformed_requests_are_400_with_the_field_path(cds, ehr, records):
    record = diabetic(records)[0]
    body = hook_body(record, earlier_of(record, records))

    def post(payload, **kw):
        return cds.client.post(SERVICE, headers=bearer(cds, ehr, SERVICE), **({"json": payload} | kw))

    cases = {
        ("body", "hookInstance"): {**body, "hookInstance": "not-a-uuid"},
        ("body", "context", "patientId"): {**body, "context": {"userId": "Practitioner/1", "encounterId": "e"}},
        ("body", "context", "encounterId"): {**body, "context": {"userId": "Practitioner/1", "patientId": "p"}},
        ("body", "hook"): {**body, "hook": "patient-view"},
        ("body", "prefetch", "patient"): {**body, "prefetch": {**body["prefetch"], "patient": "Patient/1"}},
        ("body",): {**{k: v for k, v in body.items() if k != "fhirServer"},
                    "fhirAuthorization": {"access_token": "secret-token-abc", "token_type": "Bearer",
                                          "expires_in": 300, "scope": "user/*.read", "subject": "readmit"}},
    }
    for path, payload in cases.items():
        answer = post(payload)
        assert answer.status_code == 400, (path, answer.text)
        fields = [tuple(p["field"][:len(path)]) for p in answer.json()["problems"]]
        assert path in fields, (path, answer.json())
        assert "secret-token-abc" not in answer.text and "Traceback" not in answer.text
    assert post(None, content=b"{not json").status_code == 400
    assert post(None, content=b"[]").status_code == 400
    big = {**body, "padding": "x" * 1_100_000}
    assert post(big).status_code == 413
    assert cds.client.post("/cds-services/nope", json=body,
                           headers=bearer(cds, ehr, "/cds-services/nope")).status_code == 404


def test_resources_of_the_wrong_type_or_patient_are_refused_with_their_path(cds, ehr, records):
    record = diabetic(records)[0]
    body = hook_body(record, earlier_of(record, records))
    prefetch = body["prefetch"]
    wrong_type = {**body, "prefetch": {**prefetch, "patient": {**prefetch["encounter"]}}}
    other = hook_body(diabetic(records)[1], [])["prefetch"]["patient"]
    wrong_patient = {**body, "prefetch": {**prefetch, "patient": other}}
    for case in (wrong_type, wrong_patient):
        answer = cds.client.post(SERVICE, json=case, headers=bearer(cds, ehr, SERVICE))
        assert answer.status_code == 400, answer.text
        assert answer.json()["problems"][0]["field"][:2] == ["body", "prefetch"], answer.json()


def test_a_prefetch_that_cannot_be_completed_is_412_and_an_unlisted_server_is_never_called(cds, ehr, records):
    record = diabetic(records)[0]
    body = hook_body(record, earlier_of(record, records))
    for key in ("conditions", "encounter", "patient"):
        gap = {**body, "prefetch": {**body["prefetch"], key: None}}
        alone = cds.client.post(SERVICE, json=gap, headers=bearer(cds, ehr, SERVICE))
        assert alone.status_code == 412, (key, alone.text)  # nothing to fetch from
    listening = JwksServer(ehr)  # a server that counts what reaches it, not on the allowlist
    try:
        elsewhere = {**body, "prefetch": {**body["prefetch"], "conditions": None},
                     "fhirServer": f"{listening.url}/fhir", "fhirAuthorization": {
                         "access_token": "secret-fhir-token", "token_type": "Bearer", "expires_in": 300,
                         "scope": "user/*.read", "subject": "readmit"}}
        answer = cds.client.post(SERVICE, json=elsewhere, headers=bearer(cds, ehr, SERVICE))
        assert answer.status_code == 400 and answer.json()["problems"][0]["field"] == ["body", "fhirServer"]
        assert "secret-fhir-token" not in answer.text and listening.fetches == 0
    finally:
        listening.stop()


# -- feedback --------------------------------------------------------------------------------
def test_feedback_is_kept_beside_the_audit_records(cds, ehr, records):
    record = diabetic(records)[0]
    card = cds.client.post(SERVICE, json=hook_body(record, earlier_of(record, records)),
                           headers=bearer(cds, ehr, SERVICE)).json()["cards"][0]
    feedback = {"feedback": [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-02T10:05:31Z",
         "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "spoke to Mrs Smith"}}]}
    path = f"{SERVICE}/feedback"
    answer = cds.client.post(path, json=feedback, headers=bearer(cds, ehr, path))
    assert answer.status_code == 200, answer.text
    stored = [p for p in Path(cds.settings.registry_uri).rglob("audit/feedback/*/*.json") if card["uuid"] in p.read_text()]
    [kept] = stored
    item = json.loads(kept.read_text())["feedback"][0]
    assert item["outcome"] == "overridden" and item["override_reason"]["code"] == card["overrideReasons"][0]["code"]
    assert item["comment_given"] and "Smith" not in kept.read_text()
    bad = {
        "outcome": {"feedback": [{**feedback["feedback"][0], "outcome": "ignored"}]},
        "card": {"feedback": [{**feedback["feedback"][0], "card": "x"}]},
        "outcomeTimestamp": {"feedback": [{**feedback["feedback"][0], "outcomeTimestamp": "yesterday"}]},
        "acceptedSuggestions": {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                                              "outcomeTimestamp": "2026-12-02T10:05:31Z"}]},
    }
    for field, payload in bad.items():
        refused = cds.client.post(path, json=payload, headers=bearer(cds, ehr, path))
        assert refused.status_code == 400, (field, refused.text)
        assert refused.json()["problems"][0]["field"][:3] == ["body", "feedback", 0], refused.json()
    assert cds.client.post(path, json={"feedback": []}, headers=bearer(cds, ehr, path)).status_code == 400


def test_acceptance_and_override_rates_by_band_come_from_the_audit_trail(cds, ehr, records):
    from readmit.monitoring.feedback import feedback_rates

    registry = Registry(cds.settings.registry_uri)
    before = feedback_rates(registry)
    shown = []
    for record in diabetic(records)[:6]:
        card = cds.client.post(SERVICE, json=hook_body(record, earlier_of(record, records)),
                               headers=bearer(cds, ehr, SERVICE)).json()["cards"][0]
        shown.append((card, card["extension"]["org.readmit.prediction"]["risk_band"]))
    path = f"{SERVICE}/feedback"
    (first, band), (second, band2) = shown[0], shown[1]
    sent = [{"card": first["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-02T10:00:00Z",
             "overrideReason": {"reason": first["overrideReasons"][1]}}]
    if "suggestions" in second:
        sent.append({"card": second["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-12-02T10:01:00Z",
                     "acceptedSuggestions": [{"id": second["suggestions"][0]["uuid"]}]})
    answer = cds.client.post(path, json={"feedback": sent}, headers=bearer(cds, ehr, path))
    assert answer.status_code == 200, answer.text
    after = feedback_rates(registry)
    counts = Counter(b for _, b in shown)
    for b, n in counts.items():
        assert after[b]["cards"] == before.get(b, {}).get("cards", 0) + n
    assert after[band]["overridden"] == before.get(band, {}).get("overridden", 0) + 1
    assert after[band]["override_reasons"].get(first["overrideReasons"][1]["code"], 0) >= 1
    if "suggestions" in second:
        assert after[band2]["accepted"] == before.get(band2, {}).get("accepted", 0) + 1
    assert all(0 <= v["override_rate"] <= 1 and 0 <= v["acceptance_rate"] <= 1 for v in after.values())


def test_cds_hooks_on_a_public_address_without_an_issuer_refuses_to_start(serve_models, tmp_path, monkeypatch):
    from readmit.errors import ReadmitInputError
    from readmit.service import serve

    monkeypatch.setenv("READMIT_API_TOKENS", f"tests={TOKEN}")
    settings = Served(serve_models.config, serve_models.datamart, serve_models.registry).settings(
        {"serve_config": {"cds_hooks": {"enabled": True, "base_url": "https://cds.example.org"}}}, tmp=tmp_path)
    with pytest.raises(ReadmitInputError, match="no trusted issuer"):
        serve(settings, host="0.0.0.0", port=free_port())


# -- as an EHR shows it ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> str:
    from report.browser import chromium_binary

    binary = chromium_binary()
    if binary is None:
        pytest.fail("chromium not found: `apt-get install -y chromium` (or set READMIT_CHROMIUM to a Chrome binary)")
    return binary


def test_an_ehr_draws_the_cards_in_a_real_browser(cds, ehr, records, chromium, tmp_path):
    import io

    import matplotlib.image as mpimg

    from report.browser import open_page
    from service.ehr_page import COLOURS, page

    cards = []
    for record in diabetic(records):
        card = cds.client.post(SERVICE, json=hook_body(record, earlier_of(record, records)),
                               headers=bearer(cds, ehr, SERVICE)).json()["cards"][0]
        if card["indicator"] != "info":
            cards.append(card)
            break
    record = diabetic(records)[0]
    outside = {**record, "diag_1": "428", "diag_2": "401", "diag_3": "486"}
    cards += cds.client.post(SERVICE, json=hook_body(outside, []), headers=bearer(cds, ehr, SERVICE)).json()["cards"]
    shown = cards[0]["indicator"]
    assert [c["indicator"] for c in cards] == [shown, "info"] and shown in ("warning", "critical")
    path = tmp_path / "cards.html"
    path.write_text(page({"cards": cards}))
    visit = open_page(path.as_uri(), width=1000, height=700)
    assert visit.loaded and visit.errors == [] and visit.requests == [path.as_uri()]
    pixels = (mpimg.imread(io.BytesIO(visit.png), format="png")[..., :3] * 255).round()
    for indicator in (shown, "info"):
        near = (abs(pixels - COLOURS[indicator]).max(axis=2) <= 8).mean()
        assert near > 0.002, (indicator, near)  # the indicator's bar and badge are drawn
    absent = ({"warning", "critical"} - {shown}).pop()
    assert (abs(pixels - COLOURS[absent]).max(axis=2) <= 8).mean() < 0.001
    ink = (pixels.mean(axis=2) < 100).mean()
    assert ink > 0.01, ink  # the summary and detail text
    (tmp_path / "cds_hooks_cards.png").write_bytes(visit.png)  # docs/cds_hooks_cards.png is one of these
    (tmp_path / "cards.json").write_text(json.dumps({"cards": cards}, indent=2, ensure_ascii=False))
