"""Fake Sheets API v4 (target "sheets"; ops "sheets.get", "sheets.batchUpdate", "sheets.append").

  GET  /v4/spreadsheets/{id}                                   spreadsheet + tab properties (fields is ignored)
  POST /v4/spreadsheets/{id}:batchUpdate                       addSheet only; all-or-nothing
  POST /v4/spreadsheets/{id}/values/{range}:append?valueInputOption=RAW|USER_ENTERED[&insertDataOption=..]
  PUT  /v4/spreadsheets/{id}/values/{range}?valueInputOption=RAW|USER_ENTERED  (values.update: overwrite a block)
  GET  /v4/spreadsheets/{id}/values/{range}                    a block of cells, trailing blanks trimmed

Cells are stored exactly as received (USER_ENTERED is not interpreted). A tab is a grid of rows;
append writes after the last row that has a non-empty cell, starting at the range's first column.

Control:
  POST /_fake/sheets        {"spreadsheet_id": "abc", "tabs": ["Sheet1", ...], "title"?: "..",
                             "rows"?: {"Sheet1": [[...], ...]}}   create (or replace) a spreadsheet
  GET  /_fake/sheets/{id}   {"spreadsheet_id", "title", "tabs": {"<title>": [[row], ...]}, "tab_order": [...],
                             "sheet_ids": {"<title>": n}}
  POST /_fake/sheets_quota  {"writes_per_minute": N|null, "reads_per_minute": N|null, "window_seconds": 60}
"""

import random
import re
import time
import urllib.parse
from collections import deque

from .server import BadRequest, Response, google_error

_A1 = re.compile(r"([A-Za-z]{1,3})?([0-9]+)?(?::([A-Za-z]{1,3})?([0-9]+)?)?")
_PLAIN_TITLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CELL_LIKE = re.compile(r"[A-Za-z]{1,3}[0-9]*|R[0-9]*C[0-9]*", re.IGNORECASE)


def col_letters(n):
    s = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def col_number(letters):
    n = 0
    for c in letters.upper():
        n = n * 26 + (ord(c) - 64)
    return n


def quote_title(title):
    if _PLAIN_TITLE.fullmatch(title) and not _CELL_LIKE.fullmatch(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def split_range(r):
    """'Tab'!A1 / Tab!A:L / 'It''s'!A1 / Tab / A1:L  ->  (title or None, a1 or None). ValueError if malformed."""
    if r.startswith("'"):
        i, title = 1, ""
        while True:
            j = r.find("'", i)
            if j < 0:
                raise ValueError("unterminated quote")
            if r[j + 1:j + 2] == "'":
                title += r[i:j] + "'"
                i = j + 2
                continue
            title += r[i:j]
            rest = r[j + 1:]
            break
        if rest == "":
            return title, None
        if not rest.startswith("!") or len(rest) == 1:
            raise ValueError("expected ! after the quoted title")
        return title, rest[1:]
    if "!" in r:
        title, a1 = r.rsplit("!", 1)
        if not title or not a1:
            raise ValueError("empty title or A1 part")
        return title, a1
    return None, r


def _check_value_input_option(req):
    """The 400 Sheets answers for a missing or unknown valueInputOption, else None."""
    vio = req.q("valueInputOption")
    if vio is None:
        return google_error(400, "'valueInputOption' is required but not specified", reason="badRequest")
    if vio not in ("RAW", "USER_ENTERED"):
        return google_error(400, f"Invalid value at 'value_input_option' "
                                 f"(type.googleapis.com/google.apps.sheets.v4.ValueInputOption), \"{vio}\"")
    return None


def parse_a1(a1):
    """-> (first column number, first row number or None). ValueError if it is not A1 notation."""
    m = _A1.fullmatch(a1 or "")
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError("not A1")
    if ":" in a1 and not (m.group(3) or m.group(4)):
        raise ValueError("not A1")
    return (col_number(m.group(1)) if m.group(1) else 1), (int(m.group(2)) if m.group(2) else None)


class Sheets:
    def __init__(self):
        self.reset()

    def reset(self):
        self.books = {}
        self.quota = {"writes_per_minute": None, "reads_per_minute": None, "window_seconds": 60.0}
        self.writes = deque()
        self.reads = deque()

    def register(self, app):
        self.app = app
        sid = r"(?P<id>[^/:%]+)"
        app.add_route("GET", rf"/v4/spreadsheets/{sid}", "sheets", self.get, op="sheets.get")
        app.add_route("POST", rf"/v4/spreadsheets/{sid}(?::|%3[Aa])batchUpdate", "sheets", self.batch_update,
                      op="sheets.batchUpdate")
        app.add_route("POST", rf"/v4/spreadsheets/{sid}/values/(?P<range>.+)", "sheets", self.append,
                      op="sheets.append")
        app.add_route("GET", rf"/v4/spreadsheets/{sid}/values/(?P<range>.+)", "sheets", self.values_get,
                      op="sheets.values_get")
        app.add_route("PUT", rf"/v4/spreadsheets/{sid}/values/(?P<range>.+)", "sheets", self.values_update,
                      op="sheets.values_update")
        app.add_control("POST", r"/_fake/sheets", self._ctl_create)
        app.add_control("GET", r"/_fake/sheets/(?P<id>[^/]+)", self._ctl_get)
        app.add_control("POST", r"/_fake/sheets_quota", self._ctl_quota)

    # --- control ---
    def _ctl_create(self, req, m):
        try:
            body = req.json()
            sid = body["spreadsheet_id"]
            tabs = body.get("tabs") or ["Sheet1"]
            assert isinstance(sid, str) and sid and all(isinstance(t, str) and t for t in tabs)
        except Exception:
            return Response.json(400, {"error": 'body must be {"spreadsheet_id": "..", "tabs": ["..", ..]}'})
        preload = body.get("rows") or {}
        with self.app.lock:
            book = {"title": body.get("title") or f"Fake spreadsheet {sid}", "tabs": []}
            for i, t in enumerate(tabs):
                book["tabs"].append(self._new_tab(book, t, i, 0 if i == 0 else None))
                book["tabs"][-1]["rows"] = [list(r) for r in preload.get(t, [])]
            self.books[sid] = book
        return Response.json(200, self._dump(sid))

    def _ctl_get(self, req, m):
        sid = urllib.parse.unquote(m["id"])
        with self.app.lock:
            if sid not in self.books:
                return Response.json(404, {"error": f"no spreadsheet {sid}"})
            return Response.json(200, self._dump(sid))

    def _ctl_quota(self, req, m):
        try:
            body = req.json()
        except BadRequest:
            return Response.json(400, {"error": "body must be JSON"})
        with self.app.lock:
            for k in ("writes_per_minute", "reads_per_minute", "window_seconds"):
                if k in body:
                    self.quota[k] = body[k] if body[k] else (60.0 if k == "window_seconds" else None)
            self.writes.clear()
            self.reads.clear()
            return Response.json(200, self.quota)

    def _dump(self, sid):
        book = self.books[sid]
        return {"spreadsheet_id": sid, "title": book["title"],
                "tabs": {t["title"]: t["rows"] for t in book["tabs"]},
                "tab_order": [t["title"] for t in sorted(book["tabs"], key=lambda t: t["index"])],
                "sheet_ids": {t["title"]: t["sheetId"] for t in book["tabs"]}}

    def _new_tab(self, book, title, index, sheet_id=None):
        used = {t["sheetId"] for t in book["tabs"]}
        while sheet_id is None or sheet_id in used:
            sheet_id = random.randint(1, 2**31 - 1)
        return {"sheetId": sheet_id, "title": title, "index": index, "rows": [], "rowCount": 1000, "columnCount": 26}

    # --- helpers ---
    def _book(self, m):
        sid = urllib.parse.unquote(m["id"])
        book = self.books.get(sid)
        if book is None:
            return sid, None, google_error(404, "Requested entity was not found.", reason="notFound")
        return sid, book, None

    def _over_quota(self, kind):
        limit = self.quota[f"{kind}s_per_minute"]
        q = self.writes if kind == "write" else self.reads
        now = time.monotonic()
        while q and now - q[0] >= float(self.quota["window_seconds"]):
            q.popleft()
        if limit is not None and len(q) >= int(limit):
            label = "Write" if kind == "write" else "Read"
            metric = f"sheets.googleapis.com/{kind}_requests"
            msg = (f"Quota exceeded for quota metric '{label} requests' and limit '{label} requests per minute per user' "
                   f"of service 'sheets.googleapis.com' for consumer 'project_number:000000000000'.")
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "googleapis.com",
                        "metadata": {"quota_limit": f"{label}RequestsPerMinutePerUser", "quota_metric": metric,
                                     "service": "sheets.googleapis.com", "consumer": "projects/000000000000",
                                     "quota_limit_value": str(limit)}},
                       {"@type": "type.googleapis.com/google.rpc.Help",
                        "links": [{"description": "Request a higher quota limit.",
                                   "url": "https://cloud.google.com/docs/quota#requesting_higher_quota"}]}]
            return google_error(429, msg, reason="rateLimitExceeded", status="RESOURCE_EXHAUSTED", details=details)
        q.append(now)
        return None

    @staticmethod
    def _props(tab):
        return {"sheetId": tab["sheetId"], "title": tab["title"], "index": tab["index"], "sheetType": "GRID",
                "gridProperties": {"rowCount": max(tab["rowCount"], len(tab["rows"])),
                                   "columnCount": tab["columnCount"]}}

    # --- GET /v4/spreadsheets/{id} ---
    def get(self, req, m):
        sid, book, err = self._book(m)
        if err:
            return err
        err = self._over_quota("read")
        if err:
            return err
        tabs = sorted(book["tabs"], key=lambda t: t["index"])
        return Response.json(200, {
            "spreadsheetId": sid,
            "properties": {"title": book["title"], "locale": "en_US", "autoRecalc": "ON_CHANGE",
                           "timeZone": "Etc/GMT"},
            "sheets": [{"properties": self._props(t)} for t in tabs],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{sid}/edit"})

    # --- POST :batchUpdate ---
    def batch_update(self, req, m):
        sid, book, err = self._book(m)
        if err:
            return err
        try:
            body = req.json()
        except BadRequest as e:
            return google_error(400, f"Invalid JSON payload received. {e}", reason="badRequest")
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return google_error(400, "Must specify at least one request.", reason="badRequest")
        err = self._over_quota("write")
        if err:
            return err
        taken = {t["title"].lower() for t in book["tabs"]}
        plans = []
        for i, r in enumerate(requests):
            if not isinstance(r, dict) or len(r) != 1:
                return google_error(400, f"Invalid requests[{i}]: exactly one kind of request must be set.")
            kind = next(iter(r))
            if kind != "addSheet":
                return google_error(400, f"Invalid requests[{i}]: the fake supports only addSheet, not {kind}.")
            props = (r["addSheet"] or {}).get("properties") or {}
            title = props.get("title")
            if title is None:
                n = len(book["tabs"]) + len(plans) + 1
                while f"sheet{n}" in taken:
                    n += 1
                title = f"Sheet{n}"
            if not isinstance(title, str) or not title.strip():
                return google_error(400, f"Invalid requests[{i}].addSheet: Sheet name must not be empty.")
            if title.lower() in taken:
                return google_error(400, f'Invalid requests[{i}].addSheet: A sheet with the name "{title}" already '
                                         f'exists. Please enter another name.')
            sheet_id = props.get("sheetId")
            if sheet_id is not None and (sheet_id in {t["sheetId"] for t in book["tabs"]}
                                         or sheet_id in {p[1] for p in plans}):
                return google_error(400, f"Invalid requests[{i}].addSheet: A sheet with the id {sheet_id} already "
                                         f"exists.")
            taken.add(title.lower())
            plans.append((title, sheet_id, props))
        replies = []
        for title, sheet_id, props in plans:
            count = len(book["tabs"])
            index = props.get("index")
            index = count if not isinstance(index, int) or index < 0 or index > count else index
            for t in book["tabs"]:
                if t["index"] >= index:
                    t["index"] += 1
            tab = self._new_tab(book, title, index, sheet_id)
            grid = props.get("gridProperties") or {}
            tab["rowCount"] = int(grid.get("rowCount", 1000))
            tab["columnCount"] = int(grid.get("columnCount", 26))
            book["tabs"].append(tab)
            replies.append({"addSheet": {"properties": self._props(tab)}})
        return Response.json(200, {"spreadsheetId": sid, "replies": replies})

    # --- POST /values/{range}:append ---
    # --- GET /v4/spreadsheets/{id}/values/{range}: a column or block, rows trimmed like Google ---
    def values_get(self, req, m):
        rng = urllib.parse.unquote(m["range"])
        sid, book, err = self._book(m)
        if err:
            return err
        unparsable = google_error(400, f"Unable to parse range: {rng}")
        try:
            title, a1 = split_range(rng)
        except ValueError:
            return unparsable
        tab = next((t for t in book["tabs"] if t["title"] == title), None) if title is not None else None
        if tab is None:
            return unparsable
        m1 = _A1.fullmatch(a1 or "")
        if not m1 or not (m1.group(1) or m1.group(2)):
            return unparsable
        first_col = col_number(m1.group(1)) if m1.group(1) else 1
        last_col = col_number(m1.group(3)) if m1.group(3) else (first_col if not m1.group(4) else 26)
        first_row = int(m1.group(2)) if m1.group(2) else 1
        last_row = int(m1.group(4)) if m1.group(4) else len(tab["rows"])
        err = self._over_quota("read")
        if err:
            return err
        out_rows = []
        for r in tab["rows"][first_row - 1:last_row]:
            cells = r[first_col - 1:last_col]
            while cells and cells[-1] in (None, ""):
                cells = cells[:-1]
            out_rows.append(["" if c is None else c for c in cells])
        while out_rows and not out_rows[-1]:
            out_rows.pop()
        out = {"range": f"{quote_title(tab['title'])}!{a1}", "majorDimension": "ROWS"}
        if out_rows:
            out["values"] = out_rows
        return Response.json(200, out)

    # --- PUT /v4/spreadsheets/{id}/values/{range}: overwrite the cells from the range's top-left ---
    def values_update(self, req, m):
        rng = urllib.parse.unquote(m["range"])
        sid, book, err = self._book(m)
        if err:
            return err
        err = _check_value_input_option(req)
        if err:
            return err
        unparsable = google_error(400, f"Unable to parse range: {rng}")
        try:
            title, a1 = split_range(rng)
        except ValueError:
            return unparsable
        tab = next((t for t in book["tabs"] if t["title"] == title), None) if title is not None else None
        m1 = _A1.fullmatch(a1 or "")
        if tab is None or not m1 or not m1.group(1) or not m1.group(2):
            return unparsable
        try:
            body = req.json()
        except BadRequest as e:
            return google_error(400, f"Invalid JSON payload received. {e}")
        values = body.get("values", []) if isinstance(body, dict) else None
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            return google_error(400, "Invalid JSON payload received. Invalid value at 'data.values'")
        err = self._over_quota("write")
        if err:
            return err
        col0, row0 = col_number(m1.group(1)), int(m1.group(2))
        rows = tab["rows"]
        for i, values_row in enumerate(values):
            while len(rows) < row0 + i:
                rows.append([])
            row = rows[row0 - 1 + i]
            row.extend([None] * max(0, col0 - 1 + len(values_row) - len(row)))
            row[col0 - 1:col0 - 1 + len(values_row)] = list(values_row)
        width = max((len(r) for r in values), default=0)
        qt = quote_title(tab["title"])
        updated = (f"{qt}!{col_letters(col0)}{row0}:{col_letters(col0 + max(width, 1) - 1)}{row0 + max(len(values), 1) - 1}")
        return Response.json(200, {"spreadsheetId": sid, "updatedRange": updated, "updatedRows": len(values),
                                   "updatedColumns": width, "updatedCells": sum(1 for r in values for c in r if c is not None)})

    def append(self, req, m):
        decoded = urllib.parse.unquote(m["range"])
        if not decoded.endswith(":append"):
            return google_error(404, "Requested entity was not found.", reason="notFound")
        rng = decoded[:-len(":append")]
        sid, book, err = self._book(m)
        if err:
            return err
        err = _check_value_input_option(req)
        if err:
            return err
        ido = req.q("insertDataOption")
        if ido is not None and ido not in ("OVERWRITE", "INSERT_ROWS"):
            return google_error(400, f"Invalid value at 'insert_data_option' "
                                     f"(type.googleapis.com/google.apps.sheets.v4.InsertDataOption), \"{ido}\"")
        unparsable = google_error(400, f"Unable to parse range: {rng}")
        try:
            title, a1 = split_range(rng)
        except ValueError:
            return unparsable
        tabs = sorted(book["tabs"], key=lambda t: t["index"])
        tab = None
        if title is None:
            tab = next((t for t in tabs if t["title"] == a1), None)
            if tab is not None:
                a1 = None
            elif tabs:
                tab = tabs[0]
        else:
            tab = next((t for t in tabs if t["title"] == title), None)
        if tab is None:
            return unparsable
        try:
            start_col, _ = parse_a1(a1) if a1 is not None else (1, None)
        except ValueError:
            return unparsable
        try:
            body = req.json()
        except BadRequest as e:
            return google_error(400, f"Invalid JSON payload received. {e}")
        if not isinstance(body, dict):
            return google_error(400, "Invalid JSON payload received. Expected an object.")
        values = body.get("values", [])
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            return google_error(400, "Invalid JSON payload received. Invalid value at 'data.values'")
        for i, row in enumerate(values):
            for j, cell in enumerate(row):
                if isinstance(cell, (dict, list)):
                    kind = "struct_value" if isinstance(cell, dict) else "list_value"
                    return google_error(400, f"Invalid values[{i}][{j}]: {kind}")
        major = body.get("majorDimension", "ROWS")
        if major not in ("ROWS", "COLUMNS", "DIMENSION_UNSPECIFIED"):
            return google_error(400, f"Invalid value at 'data.major_dimension', \"{major}\"")
        if major == "COLUMNS" and values:
            height = max(len(c) for c in values)
            values = [[c[i] if i < len(c) else None for c in values] for i in range(height)]
        err = self._over_quota("write")
        if err:
            return err

        rows = tab["rows"]
        used = 0
        for i, r in enumerate(rows):
            if any(c not in (None, "") for c in r):
                used = i + 1
        qt = quote_title(tab["title"])
        out = {"spreadsheetId": sid}
        if used:
            width = max(len(r) for r in rows[:used]) or 1
            out["tableRange"] = f"{qt}!A1:{col_letters(width)}{used}"
        updates = {"spreadsheetId": sid}
        if values:
            del rows[used:]
            for r in values:
                rows.append([None] * (start_col - 1) + list(r))
            width = max((len(r) for r in values), default=0)
            first, last = used + 1, used + len(values)
            end_col = start_col + max(width, 1) - 1
            updated_range = f"{qt}!{col_letters(start_col)}{first}:{col_letters(end_col)}{last}"
            cells = sum(1 for r in values for c in r if c is not None)
            updates.update({"updatedRange": updated_range, "updatedRows": len(values), "updatedColumns": width,
                            "updatedCells": cells})
            if req.flag("includeValuesInResponse"):
                updates["updatedData"] = {"range": updated_range, "majorDimension": "ROWS", "values": values}
        out["updates"] = updates
        return Response.json(200, out)
