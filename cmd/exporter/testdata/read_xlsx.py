"""Dump every sheet of an XLSX workbook as JSON, read by openpyxl: an
independent reader for the tests. Each cell is [type, value-as-text]."""
import datetime
import json
import sys

import openpyxl


def cell(v):
    if v is None:
        return ["none", ""]
    if isinstance(v, bool):
        return ["bool", "true" if v else "false"]
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, float):
        return ["float", repr(v)]
    if isinstance(v, datetime.datetime):
        return ["datetime", v.isoformat()]
    if isinstance(v, datetime.date):
        return ["date", v.isoformat()]
    return ["str", str(v)]


def main(path):
    wb = openpyxl.load_workbook(path, read_only=True)
    out = []
    for ws in wb.worksheets:
        rows = [[cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
        out.append({"name": ws.title, "rows": rows, "freeze": None})
    wb.close()
    # Frozen panes and formats need the full (not read-only) mode.
    wb = openpyxl.load_workbook(path)
    for i, ws in enumerate(wb.worksheets):
        out[i]["freeze"] = ws.freeze_panes
        out[i]["bold_header"] = bool(ws["A1"].font and ws["A1"].font.b)
        out[i]["autofilter"] = ws.auto_filter.ref
        out[i]["formats"] = [c.number_format for c in (ws[2] if ws.max_row >= 2 else [])]
    json.dump(out, sys.stdout)


main(sys.argv[1])
