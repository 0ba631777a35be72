"""docs/fhir_mapping.md shows the mapping's code tables as the code holds them (valuesets)."""

from __future__ import annotations

from pathlib import Path

from readmit.service.fhir import PREFETCH_TEMPLATES
from readmit.service.fhir import valuesets as vs
from readmit.service.fhir.mapping import NOT_IN_FHIR

DOC = Path(__file__).resolve().parents[2] / "docs" / "fhir_mapping.md"
START, END = "<!-- fhir-tables:start -->", "<!-- fhir-tables:end -->"


def _table(title: str, head: tuple[str, str], rows: list[tuple[object, object]]) -> str:
    lines = [f"**{title}**", "", f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| `{a}` | {str(b).replace('|', chr(92) + '|')} |" for a, b in rows]
    return "\n".join(lines)


def render_tables() -> str:
    """The generated part of docs/fhir_mapping.md."""
    def checked(code: str) -> str:
        status, how = vs.RXCUI_CHECKS[code]
        return f"{status}: {how}"

    drugs = [(code, f"{name}; {checked(code)}") for code, name in vs.INGREDIENTS.items()]
    drugs += [(code, f"insulin ({name}); {checked(code)}") for code, name in vs.INSULINS.items()]
    parts = [
        _table("Prefetch templates", ("key", "FHIR query"), [(k, f"`{q}`") for k, q in PREFETCH_TEMPLATES.items()]),
        _table(f"Encounter.priority ({vs.ACT_PRIORITY}) -> admission_type_id", ("code", "UCI id"),
               list(vs.ADMISSION_TYPE.items())),
        _table(f"Encounter.hospitalization.admitSource ({vs.ADMIT_SOURCE}) -> admission_source_id",
               ("code", "UCI id"), list(vs.ADMISSION_SOURCE.items())),
        _table(f"Encounter.hospitalization.dischargeDisposition ({vs.DISCHARGE_DISPOSITION}) -> "
               "discharge_disposition_id", ("code", "UCI id"), list(vs.DISCHARGE_DISPOSITIONS.items())),
        _table("Patient.gender -> gender", ("code", "UCI"), list(vs.GENDER.items())),
        _table(f"US Core race ombCategory / detailed ({vs.OMB_RACE}) -> race", ("code", "UCI"),
               [*vs.RACE.items(), (f"{vs.HISPANIC} (us-core-ethnicity)", "Hispanic")]),
        _table(f"RxNorm ingredient ({vs.RXNORM}) -> drug column (how the code was checked, 2026-12-03)",
               ("RxCUI", "column; check"), drugs),
        _table("Two ingredients in one request -> combination column", ("ingredients", "column"),
               [(" + ".join(sorted(pair)), column) for pair, column in vs.COMBINATIONS.items()]),
        _table("Columns without a standard element: readmit's Encounter extension, else missing",
               ("column", "extension url; why missing without it"),
               [(c, f"`{vs.uci_extension(c)}` "
                    f"({'valueInteger' if c in vs.EXTENSION_INTEGERS else 'valueString'}); {why}")
                for c, why in NOT_IN_FHIR.items()]),
    ]
    return "\n\n".join(parts)


def test_every_rxnorm_code_says_how_it_was_checked():
    codes = {*vs.INGREDIENTS, *vs.INSULINS}
    assert set(vs.RXCUI_CHECKS) == codes, set(vs.RXCUI_CHECKS) ^ codes
    assert {status for status, _ in vs.RXCUI_CHECKS.values()} <= {"verified", "unverified"}
    assert set(vs.NO_RXNORM_DRUGS) == {"examide", "citoglipton"}
    assert not set(vs.NO_RXNORM_DRUGS) & {*vs.INGREDIENTS.values(), *vs.COMBINATIONS.values()}


def test_the_doc_shows_the_code_tables():
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC.name} lacks the {START} .. {END} markers"
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == render_tables(), (
        f"docs/fhir_mapping.md is out of date; put this between the markers:\n{render_tables()}")
