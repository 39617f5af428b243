"""`minhu export`: the ledger's cases, case events and ratings as Parquet and CSV files, for
notebooks (pandas, polars, DuckDB read either)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from streams.drivers.ledger import Case, CaseEvent, make_engine


def ledger_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    """cases (as routed, current status), case_events (one row per event, its data as JSON)
    and ratings (one row per recorded rating)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            cases = [dict(r._mapping) for r in conn.execute(select(Case.__table__))]
            rows = conn.execute(
                select(
                    CaseEvent.case_id,
                    CaseEvent.event_id,
                    CaseEvent.type,
                    CaseEvent.at,
                    CaseEvent.document,
                ).order_by(CaseEvent.seq)
            )
            events, ratings = [], []
            for case_id, event_id, type_, at, document in rows:
                data = json.loads(document)["data"]
                events.append(
                    {
                        "case_id": case_id,
                        "event_id": event_id,
                        "type": type_,
                        "at": at,
                        "data": json.dumps(data, ensure_ascii=False),
                    }
                )
                if type_ == "minhu.rating.recorded":
                    ratings.append(
                        {
                            "case_id": case_id,
                            "at": at,
                            **{
                                k: data.get(k)
                                for k in (
                                    "opening",
                                    "rater_id",
                                    "rater_kind",
                                    "ratee_unit_id",
                                    "ratee_tier",
                                    "category",
                                    "verdict",
                                    "score",
                                    "comment",
                                )
                            },
                        }
                    )
    finally:
        engine.dispose()
    return {"cases": cases, "case_events": events, "ratings": ratings}


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows (dicts with the same keys) as a CSV file with a header; empty rows, empty file."""
    with path.open("w", encoding="utf-8", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def export(url: str, out: Path, formats: tuple[str, ...] = ("parquet", "csv")) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in ledger_tables(url).items():
        if "parquet" in formats:
            import pyarrow as pa
            import pyarrow.parquet as pq

            path = out / f"{name}.parquet"
            pq.write_table(pa.Table.from_pylist(rows), path)
            written.append(path)
        if "csv" in formats:
            path = out / f"{name}.csv"
            write_csv(path, rows)
            written.append(path)
    return written
