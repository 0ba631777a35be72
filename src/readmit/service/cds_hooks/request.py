"""The CDS Hooks 2.0 request and feedback bodies, checked before anything is fetched or scored.

A body that does not fit is a 400 naming each field's path (``["body", "context", "patientId"]``)
and what is wrong; the values are never echoed (``fhirAuthorization`` holds a token).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_ID = 128  # a FHIR id is at most 64 characters; a reference adds its type


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)  # the spec lets clients add fields (extensions)


class FhirAuthorization(_Body):
    access_token: str = Field(min_length=1, max_length=16_384)
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: str = Field(max_length=4096)
    subject: str = Field(max_length=512)
    patient: str | None = Field(None, max_length=MAX_ID)


class Context(_Body):
    userId: str = Field(min_length=1, max_length=MAX_ID)  # noqa: N815 (the spec's names)
    patientId: str = Field(min_length=1, max_length=MAX_ID)  # noqa: N815
    encounterId: str | None = Field(None, min_length=1, max_length=MAX_ID)  # noqa: N815


class HookRequest(_Body):
    hook: str = Field(max_length=64)
    hookInstance: uuid.UUID  # noqa: N815
    fhirServer: str | None = Field(None, max_length=2048, pattern=r"^https?://")  # noqa: N815
    fhirAuthorization: FhirAuthorization | None = None  # noqa: N815
    context: Context
    prefetch: dict[str, dict[str, Any] | None] | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> HookRequest:
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirAuthorization needs fhirServer (CDS Hooks 2.0: CONDITIONAL)")
        return self


class Coding(_Body):
    code: str = Field(min_length=1, max_length=256)
    system: str | None = Field(None, max_length=1024)
    display: str | None = Field(None, max_length=1024)


class OverrideReason(_Body):
    reason: Coding | None = None
    userComment: str | None = Field(None, max_length=4000)  # noqa: N815


class AcceptedSuggestion(_Body):
    id: str = Field(min_length=1, max_length=64)


class Feedback(_Body):
    card: uuid.UUID
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(None, max_length=20)  # noqa: N815
    overrideReason: OverrideReason | None = None  # noqa: N815
    outcomeTimestamp: datetime  # noqa: N815

    @field_validator("outcomeTimestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry its offset (RFC 3339, e.g. 2021-12-11T10:05:31Z)")
        return value

    @model_validator(mode="after")
    def _accepted_names_suggestions(self) -> Feedback:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions (CDS Hooks 2.0: CONDITIONAL)")
        return self


class FeedbackRequest(_Body):
    feedback: list[Feedback] = Field(min_length=1, max_length=100)


class InvalidBody(ValueError):
    """A body that does not fit the spec: 400 with each field's path and message."""

    def __init__(self, problems: list[dict[str, Any]]):
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))


def problems_of(exc: ValidationError) -> list[dict[str, Any]]:
    """Field paths and messages of a pydantic error, without the values sent."""
    return [{"field": ["body", *e["loc"]], "message": e["msg"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)[:50]]


def parse(model: type[BaseModel], body: Any) -> Any:
    """``body`` as ``model``, or :class:`InvalidBody`."""
    if not isinstance(body, dict):
        raise InvalidBody([{"field": ["body"], "message": "must be a JSON object"}])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidBody(problems_of(exc)) from None
