"""Names of the medallion tables, the label column, and the summary each layer step returns."""

from __future__ import annotations

from dataclasses import dataclass, field

BRONZE_TABLE = "bronze/encounters"
SILVER_TABLE = "silver/encounters"
FEATURE_STORE = "gold/feature_store"
LABEL_STORE = "gold/label_store"
PREDICTIONS = "gold/model_predictions"  # written by serving (`readmit predict`), read by monitoring and the report
REJECTED_AREA = "rejected"

LABEL = "label"  # label_store's column: readmitted within 30 days (1) or not (0)

LAYERS = ("bronze", "silver", "gold")


@dataclass
class LayerResult:
    """What one layer step did: the partitions it wrote and where every row went."""

    layer: str
    partitions: list[str] = field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    duplicates_removed: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "layer": self.layer,
            "partitions": len(self.partitions),
            "first": self.partitions[0] if self.partitions else None,
            "last": self.partitions[-1] if self.partitions else None,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_rejected": self.rows_rejected,
            "duplicates_removed": self.duplicates_removed,
            "notes": list(self.notes),
        }
