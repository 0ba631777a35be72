"""temporal_window_mode: relative -- windows that move with the data, resolved once per run."""

from __future__ import annotations

import socket
import threading
from datetime import date

import pytest

from readmit.config import RelativeWindows, load_settings, relative_splits, resolve_windows
from readmit.data.layers import LABEL_STORE
from readmit.months import months_between
from readmit.pipeline import train_algorithm
from readmit.training.gates import run_checks
from training.gold_fixtures import synthetic_gold_frames, write_gold

SHIFTED = months_between("2016-01", "2025-12")
RULE = RelativeWindows()


def _dates(splits) -> dict[str, tuple[str, str]]:
    return {w: (str(getattr(splits, w).start_date), str(getattr(splits, w).end_date)) for w in ("train", "test", "oot")}


@pytest.mark.parametrize(("as_of", "oot"), [
    (date(2026, 1, 30), ("2025-01-01", "2025-12-31")),  # December's labels mature (30 days after its end)
    (date(2026, 1, 29), ("2024-12-01", "2025-11-30")),  # not yet: the windows end a month earlier
    (date(2031, 1, 1), ("2025-01-01", "2025-12-31")),  # long after: the data's last month
])
def test_the_rule_selects_the_last_mature_months_and_the_months_before(as_of: date, oot) -> None:
    splits = relative_splits(SHIFTED, as_of, 30, RULE)
    got = _dates(splits)
    assert got["oot"] == oot
    oot_start = date.fromisoformat(oot[0])
    test_start = oot_start.replace(year=oot_start.year - 2)  # 24 months before
    assert got["test"] == (str(test_start), str(date.fromordinal(oot_start.toordinal() - 1)))
    train_start = test_start.replace(year=test_start.year - 7)  # 84 months before
    assert got["train"] == (str(train_start), str(date.fromordinal(test_start.toordinal() - 1)))
    assert relative_splits(SHIFTED, date(2016, 1, 15), 30, RULE) is None  # nothing mature yet


def test_sizes_are_configurable() -> None:
    splits = relative_splits(SHIFTED, date(2026, 6, 1), 30, RelativeWindows(oot_months=3, test_months=6, train_months=12))
    assert _dates(splits) == {"oot": ("2025-10-01", "2025-12-31"), "test": ("2025-04-01", "2025-09-30"),
                              "train": ("2024-04-01", "2025-03-31")}


@pytest.fixture(scope="module")
def shifted_gold(tmp_path_factory) -> str:
    """Synthetic gold dated 2016-2025 (a datamart where the absolute defaults find nothing)."""
    root = tmp_path_factory.mktemp("shifted")
    write_gold(str(root), *synthetic_gold_frames(first_day=date(2016, 1, 1), last_day=date(2025, 12, 31)))
    return str(root)


def test_relative_windows_on_2016_2025_resolve_when_the_run_uses_them_and_train_as_the_same_absolute_windows(
        shifted_gold, write_config, tmp_path) -> None:
    relative = load_settings(write_config({"temporal_window_mode": "relative",
                                           "relative_windows": {"as_of": "2026-03-01"}}),
                             datamart=shifted_gold, registry=str(tmp_path / "r1"))
    # loading reads nothing: the windows are the configured ones until a step resolves them
    assert not relative.windows_resolved
    assert relative.config.temporal_splits.dates() == load_settings(write_config()).config.temporal_splits.dates()
    resolved = resolve_windows(relative)
    assert resolved.windows_resolved and _dates(resolved.config.temporal_splits) == {
        "train": ("2016-01-01", "2022-12-31"), "test": ("2023-01-01", "2024-12-31"), "oot": ("2025-01-01", "2025-12-31")}
    assert all(r.passed for r in run_checks(relative, as_of=date(2026, 3, 1)))  # the gates resolve them
    absolute = load_settings(write_config({"temporal_splits": {
        "train": {"start_date": "2016-01-01", "end_date": "2022-12-31"},
        "test": {"start_date": "2023-01-01", "end_date": "2024-12-31"},
        "oot": {"start_date": "2025-01-01", "end_date": "2025-12-31"}}}),
        datamart=shifted_gold, registry=str(tmp_path / "r2"))
    assert not any(r.passed for r in run_checks(load_settings(write_config(), datamart=shifted_gold))
                   if r.name == "sufficient_training_data")  # the 1999-2008 defaults find nothing here

    meta = train_algorithm(relative, "logistic_regression")
    same = train_algorithm(absolute, "logistic_regression")
    assert meta["performance"] == same["performance"]
    assert meta["temporal_window_mode"] == "relative" and meta["temporal_splits"] == same["temporal_splits"]
    assert meta["relative_windows"] == {"oot_months": 12, "test_months": 24, "train_months": 84, "as_of": "2026-03-01"}
    assert "relative_windows" not in same


def test_on_the_reference_dates_relative_windows_are_the_absolute_defaults(synthetic_gold, write_config) -> None:
    relative = resolve_windows(load_settings(write_config({"temporal_window_mode": "relative",
                                                           "relative_windows": {"as_of": "2009-06-30"}}),
                                             datamart=synthetic_gold))
    assert relative.config.temporal_splits.dates() == load_settings(write_config()).config.temporal_splits.dates()


def test_without_mature_gold_the_configured_windows_stay_and_the_table_name_is_gold_s(write_config, tmp_path) -> None:
    empty = resolve_windows(load_settings(write_config({"temporal_window_mode": "relative"}),
                                          datamart=str(tmp_path / "none")))
    assert empty.config.temporal_splits.dates() == load_settings(write_config()).config.temporal_splits.dates()
    from readmit.config import LABEL_STORE_TABLE
    assert LABEL_STORE_TABLE == LABEL_STORE


def test_loading_relative_settings_reads_no_storage_so_a_dag_file_parses_anywhere(write_config, monkeypatch) -> None:
    """An Airflow DAG file loads the settings at parse time: with relative windows on an S3 datamart
    that is not there, loading makes no connection at all (a real socket counts them) and does not
    fail; resolving the windows (what a step does when it runs) is the first to reach for it."""
    connections: list[object] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(conn)
            conn.close()  # no S3 here: the client sees a dropped connection

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("READMIT_S3_MAX_ATTEMPTS", "1")
    try:
        settings = load_settings(write_config({"temporal_window_mode": "relative"}), datamart="s3://no-such-bucket/dm")
        assert connections == [] and not settings.windows_resolved
        resolved = resolve_windows(settings)  # an unreachable datamart: left to the step that needs it to report
        assert len(connections) > 0 and not resolved.windows_resolved
    finally:
        listener.close()
