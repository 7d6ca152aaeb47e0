"""Exports as Parquet: the same columns and rows as the CSV files, typed (Arrow schemas from the API's own
field types, so a column that is null on the first rows still has its type), written in row groups."""

from __future__ import annotations

import io
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

ROW_GROUP = 10_000
MEDIA_TYPE = "application/vnd.apache.parquet"

_ARROW = {int: pa.int64(), float: pa.float64(), bool: pa.bool_(), str: pa.string()}


def arrow_type(annotation: Any) -> pa.DataType:
    """The Arrow type of a field annotation: int, float, bool, str, datetime, list[str], Literal of strings,
    each optionally `| None` (Arrow columns are nullable)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return arrow_type(inner)
    if origin is typing.Literal:
        return pa.string()
    if origin is list:
        return pa.list_(arrow_type(typing.get_args(annotation)[0]))
    if annotation is datetime:
        return pa.timestamp("us", tz="UTC")
    return _ARROW[annotation]


def model_types(model: type[BaseModel]) -> dict[str, pa.DataType]:
    return {name: arrow_type(field.annotation) for name, field in model.model_fields.items()}


def parquet_bytes(
    header: Sequence[str], rows: Iterable[Sequence[Any]], column_types: Mapping[str, pa.DataType]
) -> bytes:
    """`rows` under `header` as one Parquet file (row groups of ROW_GROUP rows)."""
    schema = pa.schema([(name, column_types[name]) for name in header])
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, schema) as writer:
        batch: list[dict[str, Any]] = []
        wrote = False
        for row in rows:
            batch.append(dict(zip(header, row, strict=True)))
            if len(batch) == ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch, wrote = [], True
        if batch or not wrote:  # an empty export is a file with the columns and no rows
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return sink.getvalue()
