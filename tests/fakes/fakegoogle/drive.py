"""Fake Drive API v3 (target "drive"; ops "drive.list", "drive.get", "drive.create", "drive.upload",
"drive.upload_chunk").

  GET  /drive/v3/files?q=..&fields=..&pageSize=..&pageToken=..&supportsAllDrives=&includeItemsFromAllDrives=
  GET  /drive/v3/files/{id}[?alt=media]
  POST /drive/v3/files                          JSON metadata only (folders)
  POST /upload/drive/v3/files?uploadType=multipart|media|resumable
  PUT  /upload/drive/v3/files?uploadType=resumable&upload_id=..   (the session URI; no Authorization needed,
                                                                   as with the real one)
`fields` is honoured (with Drive's defaults when absent: kind,id,name,mimeType per file), so a client
that forgets to ask for parents/appProperties/size gets none, as from the real API.

Control:
  POST /_fake/drive_root    {"id": "root-folder-id", "shared_drive": false, "enforce_sa_quota": false}
  POST /_fake/drive_break   {"after_bytes": N}   the next resumable PUT that would take a session past N
                            bytes keeps only the first N, then the connection is closed unanswered (once)
  POST /_fake/drive_paging  {"empty_pages": N}   every list answers N empty pages (with nextPageToken) first
  POST /_fake/drive_trash   {"id": ".."}         marks a file trashed
  POST /_fake/drive_expire_uploads              every open resumable session is gone (404 from now on)
  GET  /_fake/drive/files                       every file: id, name, mimeType, parents, appProperties,
                                                size, md5, sha256 (hex), trashed
  GET  /_fake/drive/files/{id}/content          the stored bytes
"""

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
import urllib.parse

from .server import BadRequest, Response, google_error

FOLDER = "application/vnd.google-apps.folder"
SA_QUOTA_MESSAGE = ("Service Accounts do not have storage quota. Leverage shared drives "
                    "(https://developers.google.com/workspace/drive/api/guides/about-shareddrives), or use OAuth "
                    "delegation (http://support.google.com/a/answer/7281227) instead.")
FILE_FIELDS = set("""kind id name mimeType description starred trashed explicitlyTrashed parents properties appProperties
 spaces version webContentLink webViewLink iconLink thumbnailLink viewedByMe viewedByMeTime createdTime modifiedTime
 modifiedByMeTime modifiedByMe sharedWithMeTime sharingUser owners driveId teamDriveId lastModifyingUser shared
 ownedByMe capabilities viewersCanCopyContent copyRequiresWriterPermission writersCanShare permissions permissionIds
 hasAugmentedPermissions folderColorRgb originalFilename fullFileExtension fileExtension md5Checksum sha1Checksum
 sha256Checksum size quotaBytesUsed headRevisionId contentHints imageMediaMetadata videoMediaMetadata isAppAuthorized
 exportLinks shortcutDetails contentRestrictions resourceKey linkShareMetadata labelInfo trashedTime trashingUser
 hasThumbnail thumbnailVersion downloadRestrictions inheritedPermissionsDisabled""".split())
LIST_FIELDS = {"kind", "nextPageToken", "incompleteSearch", "files"}
DEFAULT_FILE_FIELDS = {"kind": None, "id": None, "name": None, "mimeType": None}
DEFAULT_LIST_FIELDS = {"kind": None, "nextPageToken": None, "incompleteSearch": None, "files": DEFAULT_FILE_FIELDS}


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def new_id():
    return "1" + secrets.token_urlsafe(24)[:32]


def invalid(location, message="Invalid Value", code=400):
    return google_error(code, message, reason="invalid", location=location)


# --- fields=... (partial response) --------------------------------------------------------------

_FIELD_PATH = re.compile(r"[A-Za-z0-9_*]+(?:/[A-Za-z0-9_*]+)*")


def parse_fields(s):
    """'nextPageToken,files(id,name)' -> {"nextPageToken": None, "files": {"id": None, "name": None}};
    None as a value means the whole sub-object. ValueError if malformed."""
    s = s.replace(" ", "")
    tree, i = _parse_field_list(s, 0)
    if i != len(s):
        raise ValueError(s)
    return tree


def _parse_field_list(s, i):
    tree = {}
    while True:
        m = _FIELD_PATH.match(s, i)
        if not m:
            raise ValueError(s)
        path, i = m.group(0).split("/"), m.end()
        sub = None
        if i < len(s) and s[i] == "(":
            sub, i = _parse_field_list(s, i + 1)
            if i >= len(s) or s[i] != ")":
                raise ValueError(s)
            i += 1
        for p in reversed(path[1:]):
            sub = {p: sub}
        _merge(tree, path[0], sub)
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        return tree, i


def _merge(tree, key, sub):
    if key in tree and tree[key] is None:
        return
    if sub is None or key not in tree:
        tree[key] = sub
        return
    for k, v in sub.items():
        _merge(tree[key], k, v)


def apply_fields(obj, tree):
    if tree is None:
        return obj
    if isinstance(obj, list):
        return [apply_fields(x, tree) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for k, v in obj.items():
        if "*" in tree:
            out[k] = apply_fields(v, tree["*"])
        elif k in tree:
            out[k] = apply_fields(v, tree[k])
    return out


# --- q=... (search) -----------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|<=|>=|=|<|>|\(|\)|\{|\})|(?P<word>[A-Za-z_][A-Za-z0-9_]*))")


def _tokenize(q):
    toks, i = [], 0
    while True:
        while i < len(q) and q[i].isspace():
            i += 1
        if i == len(q):
            return toks
        m = _TOKEN.match(q, i)
        if not m:
            raise ValueError(f"bad token at {i}")
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            toks.append(("str", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("op") is not None:
            toks.append(("op", m.group("op")))
        else:
            toks.append(("word", m.group("word")))
        i = m.end()


class _Query:
    """name =|!=|contains 'x', mimeType =|!=|contains 'x', 'ID' in parents, trashed =|!= true|false,
    appProperties|properties has { key='k' and value='v' }, with and/or/not and parentheses."""

    def __init__(self, q):
        self.toks = _tokenize(q)
        self.i = 0
        self.pred = self._or()
        if self.i != len(self.toks):
            raise ValueError("trailing tokens")

    def _peek(self, kind=None, value=None, ci=True):
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        if kind and k != kind:
            return False
        if value is not None and (v.lower() != value.lower() if ci else v != value):
            return False
        return True

    def _take(self, kind=None, value=None):
        if not self._peek(kind, value):
            raise ValueError(f"expected {value or kind}")
        self.i += 1
        return self.toks[self.i - 1][1]

    def _or(self):
        left = self._and()
        while self._peek("word", "or"):
            self.i += 1
            right = self._and()
            left = (lambda a, b: lambda f: a(f) or b(f))(left, right)
        return left

    def _and(self):
        left = self._unary()
        while self._peek("word", "and"):
            self.i += 1
            right = self._unary()
            left = (lambda a, b: lambda f: a(f) and b(f))(left, right)
        return left

    def _unary(self):
        if self._peek("word", "not"):
            self.i += 1
            inner = self._unary()
            return lambda f: not inner(f)
        if self._peek("op", "("):
            self.i += 1
            inner = self._or()
            self._take("op", ")")
            return inner
        return self._clause()

    def _clause(self):
        if self._peek("str"):
            value = self._take("str")
            self._take("word", "in")
            field = self._take("word")
            if field != "parents":
                raise ValueError(f"'x' in {field} is not supported")
            return lambda f: value in f["parents"]
        field = self._take("word")
        if field in ("name", "mimeType"):
            op = self._take("word", "contains") if self._peek("word", "contains") else self._take("op")
            value = self._take("str")
            if op == "=":
                return lambda f: f[field] == value
            if op == "!=":
                return lambda f: f[field] != value
            if op.lower() == "contains":
                return lambda f: value.lower() in f[field].lower()
            raise ValueError(f"operator {op} not supported for {field}")
        if field == "trashed":
            op = self._take("op")
            word = self._take("word").lower()
            if op not in ("=", "!=") or word not in ("true", "false"):
                raise ValueError("trashed = true|false")
            want = (word == "true") == (op == "=")
            return lambda f: f["trashed"] == want
        if field in ("appProperties", "properties"):
            self._take("word", "has")
            self._take("op", "{")
            self._take("word", "key")
            self._take("op", "=")
            key = self._take("str")
            self._take("word", "and")
            self._take("word", "value")
            self._take("op", "=")
            value = self._take("str")
            self._take("op", "}")
            return lambda f: f[field].get(key) == value
        raise ValueError(f"field {field} is not supported by the fake")


# --- multipart/related ----------------------------------------------------------------------------

def parse_multipart_related(content_type, body):
    """-> [(headers dict lower-case, payload bytes)]. ValueError if malformed (CRLF line ends, RFC 2046)."""
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type or "", re.IGNORECASE)
    if not m:
        raise ValueError("no boundary in Content-Type")
    dash = b"--" + (m.group(1) or m.group(2)).encode("latin-1")
    if body.startswith(dash):
        pos = 0
    else:
        pos = body.find(b"\r\n" + dash)
        if pos < 0:
            raise ValueError("no opening boundary")
        pos += 2
    parts = []
    while True:
        pos += len(dash)
        if body[pos:pos + 2] == b"--":
            return parts
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise ValueError("junk after boundary")
        start = eol + 2
        end = body.find(b"\r\n" + dash, start)
        if end < 0:
            raise ValueError("no closing boundary")
        raw = body[start:end]
        if raw.startswith(b"\r\n"):
            head, payload = b"", raw[2:]
        else:
            sep = raw.find(b"\r\n\r\n")
            if sep < 0:
                raise ValueError("part without blank line after its headers")
            head, payload = raw[:sep], raw[sep + 4:]
        headers = {}
        for line in head.split(b"\r\n"):
            if line:
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
        parts.append((headers, payload))
        pos = end + 2


class Drive:
    def __init__(self):
        self.reset()

    def reset(self):
        self.files = {}
        self.roots = {}
        self.uploads = {}
        self.break_after = None
        self.empty_pages = 0

    def register(self, app):
        self.app = app
        fid = r"(?P<id>[^/]+)"
        app.add_route("GET", r"/drive/v3/files", "drive", self.list, op="drive.list")
        app.add_route("POST", r"/drive/v3/files", "drive", self.create, op="drive.create")
        app.add_route("GET", rf"/drive/v3/files/{fid}", "drive", self.get, op="drive.get")
        app.add_route("POST", r"/upload/drive/v3/files", "drive", self.upload, op="drive.upload")
        app.add_route("PUT", r"/upload/drive/v3/files", "drive", self.upload_chunk, op="drive.upload_chunk",
                      auth=False)
        app.add_control("POST", r"/_fake/drive_root", self._ctl_root)
        app.add_control("POST", r"/_fake/drive_break", self._ctl_break)
        app.add_control("POST", r"/_fake/drive_paging", self._ctl_paging)
        app.add_control("POST", r"/_fake/drive_trash", self._ctl_trash)
        app.add_control("POST", r"/_fake/drive_expire_uploads", self._ctl_expire)
        app.add_control("GET", r"/_fake/drive/files", self._ctl_files)
        app.add_control("GET", rf"/_fake/drive/files/{fid}/content", self._ctl_content)

    # --- control ---
    def _ctl_root(self, req, m):
        try:
            body = req.json()
            rid = body["id"]
            assert isinstance(rid, str) and rid
        except Exception:
            return Response.json(400, {"error": 'body must be {"id": "..", "shared_drive": bool}'})
        with self.app.lock:
            self.roots[rid] = {"shared_drive": bool(body.get("shared_drive")),
                               "enforce_sa_quota": bool(body.get("enforce_sa_quota"))}
            return Response.json(200, {"id": rid, **self.roots[rid]})

    def _ctl_break(self, req, m):
        try:
            n = int(req.json()["after_bytes"])
        except Exception:
            return Response.json(400, {"error": 'body must be {"after_bytes": N}'})
        with self.app.lock:
            self.break_after = n
        return Response.json(200, {"after_bytes": n})

    def _ctl_paging(self, req, m):
        try:
            n = int(req.json().get("empty_pages", 0))
        except Exception:
            return Response.json(400, {"error": 'body must be {"empty_pages": N}'})
        with self.app.lock:
            self.empty_pages = n
        return Response.json(200, {"empty_pages": n})

    def _ctl_trash(self, req, m):
        try:
            fid = req.json()["id"]
        except Exception:
            return Response.json(400, {"error": 'body must be {"id": ".."}'})
        with self.app.lock:
            if fid not in self.files:
                return Response.json(404, {"error": f"no file {fid}"})
            self.files[fid]["trashed"] = True
        return Response.json(200, {"id": fid, "trashed": True})

    def _ctl_expire(self, req, m):
        with self.app.lock:
            n = len(self.uploads)
            self.uploads.clear()
        return Response.json(200, {"expired": n})

    def _ctl_files(self, req, m):
        with self.app.lock:
            out = []
            for f in self.files.values():
                c = f["content"]
                out.append({"id": f["id"], "name": f["name"], "mimeType": f["mimeType"], "parents": f["parents"],
                            "appProperties": f["appProperties"], "properties": f["properties"],
                            "size": None if c is None else len(c),
                            "md5": None if c is None else hashlib.md5(c).hexdigest(),
                            "sha256": None if c is None else hashlib.sha256(c).hexdigest(),
                            "trashed": f["trashed"], "driveId": self._drive_id(f)})
            return Response.json(200, {"files": out})

    def _ctl_content(self, req, m):
        with self.app.lock:
            f = self.files.get(urllib.parse.unquote(m["id"]))
            if f is None or f["content"] is None:
                return Response.json(404, {"error": "no such file content"})
            return Response(200, bytes(f["content"]), {"Content-Type": f["mimeType"]})

    # --- model helpers ---
    def _root_of(self, fid, depth=0):
        """The registered root above a file or root id (None if there is none)."""
        if fid in self.roots:
            return fid
        f = self.files.get(fid)
        if f is None or depth > 100:
            return None
        for p in f["parents"]:
            r = self._root_of(p, depth + 1)
            if r:
                return r
        return None

    def _drive_id(self, f_or_id):
        rid = self._root_of(f_or_id if isinstance(f_or_id, str) else f_or_id["id"])
        return rid if rid and self.roots[rid]["shared_drive"] else None

    def _visible(self, req, fid):
        """Items in a shared drive are invisible without supportsAllDrives=true."""
        return self._drive_id(fid) is None or req.flag("supportsAllDrives")

    def _not_found(self, fid):
        return google_error(404, f"File not found: {fid}.", reason="notFound", location="fileId")

    def _resource(self, f):
        out = {"kind": "drive#file", "id": f["id"], "name": f["name"], "mimeType": f["mimeType"],
               "parents": list(f["parents"]), "trashed": f["trashed"], "explicitlyTrashed": f["trashed"],
               "spaces": ["drive"], "version": str(f["version"]), "createdTime": rfc3339(f["created"]),
               "modifiedTime": rfc3339(f["created"]), "webViewLink": f"https://drive.google.com/file/d/{f['id']}/view"}
        if f["description"] is not None:
            out["description"] = f["description"]
        if f["appProperties"]:
            out["appProperties"] = dict(f["appProperties"])
        if f["properties"]:
            out["properties"] = dict(f["properties"])
        c = f["content"]
        if c is not None:
            out.update({"size": str(len(c)), "quotaBytesUsed": str(len(c)), "md5Checksum": hashlib.md5(c).hexdigest(),
                        "sha1Checksum": hashlib.sha1(c).hexdigest(), "sha256Checksum": hashlib.sha256(c).hexdigest(),
                        "originalFilename": f["name"]})
        drive_id = self._drive_id(f)
        if drive_id:
            out["driveId"] = drive_id
            out["teamDriveId"] = drive_id
        return out

    def _fields(self, req, default, allowed_top):
        """-> (tree, error response). Validates the names at the file level."""
        s = req.q("fields")
        if s is None:
            return default, None
        try:
            tree = parse_fields(s)
        except ValueError:
            return None, invalid("fields", f"Invalid field selection {s}")
        file_level = tree.get("files") if allowed_top is LIST_FIELDS else tree
        for name in tree:
            if name != "*" and name not in allowed_top:
                return None, invalid("fields", f"Invalid field selection {name}")
        for name in (file_level or {}):
            if name != "*" and name not in FILE_FIELDS:
                return None, invalid("fields", f"Invalid field selection {name}")
        return tree, None

    def _file_answer(self, req, f, status=200):
        tree, err = self._fields(req, DEFAULT_FILE_FIELDS, FILE_FIELDS)
        if err:
            return err
        return Response.json(status, apply_fields(self._resource(f), tree))

    def _check_metadata(self, req, meta, for_upload):
        """Validates create metadata. -> (normalized dict, error response)."""
        if not isinstance(meta, dict):
            return None, google_error(400, "Invalid JSON payload received. Expected an object.", reason="parseError")
        name = meta.get("name", "Untitled")
        if not isinstance(name, str):
            return None, invalid("name")
        parents = meta.get("parents")
        if parents is None:
            parents = ["root"]
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            return None, invalid("parents")
        if len(parents) != 1:
            return None, google_error(403, "Increasing the number of parents is not allowed.",
                                      reason="cannotAddParent")
        for key in ("appProperties", "properties"):
            props = meta.get(key) or {}
            if not isinstance(props, dict) or not all(isinstance(k, str) and isinstance(v, (str, type(None)))
                                                      for k, v in props.items()):
                return None, invalid(key)
            props = {k: v for k, v in props.items() if v is not None}
            if len(props) > 30:
                return None, invalid(key, f"The file has too many {key} (at most 30).")
            for k, v in props.items():
                if len(k.encode("utf-8")) + len(v.encode("utf-8")) > 124:
                    return None, invalid(key, f"The size of the property (key+value) '{k}' exceeds 124 bytes.")
            meta = {**meta, key: props}
        mime = meta.get("mimeType")
        if mime is not None and not isinstance(mime, str):
            return None, invalid("mimeType")
        for p in parents:
            if p == "root":
                continue
            if p in self.roots:
                if not self._visible(req, p):
                    return None, self._not_found(p)
                continue
            parent = self.files.get(p)
            if parent is None or not self._visible(req, p):
                return None, self._not_found(p)
            if parent["mimeType"] != FOLDER:
                return None, google_error(400, "The specified parent is not a folder.", reason="invalidParent")
        rid = self._root_of(parents[0])
        is_folder = (mime or "") == FOLDER
        if (for_upload or not is_folder) and rid and not self.roots[rid]["shared_drive"] \
                and self.roots[rid]["enforce_sa_quota"] and req.auth and req.auth.get("grant_type") == "service_account":
            return None, google_error(403, SA_QUOTA_MESSAGE, reason="storageQuotaExceeded", domain="usageLimits")
        return {"name": name, "parents": parents, "mimeType": mime, "appProperties": meta["appProperties"],
                "properties": meta["properties"], "description": meta.get("description")}, None

    def _store(self, meta, mime, content):
        fid = new_id()
        while fid in self.files:
            fid = new_id()
        f = {"id": fid, "name": meta["name"], "mimeType": mime, "parents": meta["parents"],
             "appProperties": meta["appProperties"], "properties": meta["properties"],
             "description": meta["description"], "content": None if content is None else bytes(content),
             "trashed": False, "created": time.time(), "version": 1}
        self.files[fid] = f
        return f

    # --- GET /drive/v3/files ---
    def list(self, req, m):
        tree, err = self._fields(req, DEFAULT_LIST_FIELDS, LIST_FIELDS)
        if err:
            return err
        q = req.q("q", "")
        try:
            pred = _Query(q).pred if q.strip() else (lambda f: True)
        except ValueError:
            return invalid("q")
        size = req.q("pageSize")
        try:
            size = 100 if size is None else int(size)
            if size < 1:
                raise ValueError
        except ValueError:
            return invalid("pageSize")
        size = min(size, 1000)
        token = req.q("pageToken")
        qhash = hashlib.sha1(q.encode("utf-8")).hexdigest()[:12]
        offset, empties = 0, self.empty_pages
        if token:
            try:
                t = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                if t["h"] != qhash:
                    raise ValueError
                offset, empties = int(t["o"]), int(t["e"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                return invalid("pageToken")
        all_drives = req.flag("supportsAllDrives") and req.flag("includeItemsFromAllDrives")
        matches = [f for f in self.files.values() if (all_drives or self._drive_id(f) is None) and pred(f)]

        def token_for(o, e):
            return base64.urlsafe_b64encode(json.dumps({"o": o, "h": qhash, "e": e}).encode()).decode().rstrip("=")

        out = {"kind": "drive#fileList", "incompleteSearch": False}
        if empties > 0:
            out["nextPageToken"] = token_for(offset, empties - 1)
            out["files"] = []
        else:
            page = matches[offset:offset + size]
            if offset + size < len(matches):
                out["nextPageToken"] = token_for(offset + size, 0)
            out["files"] = [self._resource(f) for f in page]
        return Response.json(200, apply_fields(out, tree))

    # --- GET /drive/v3/files/{id} ---
    def get(self, req, m):
        fid = urllib.parse.unquote(m["id"])
        f = self.files.get(fid)
        if f is None or not self._visible(req, fid):
            return self._not_found(fid)
        if req.q("alt") == "media":
            if f["content"] is None:
                return google_error(403, "Only files with binary content can be downloaded. Use Export with Docs "
                                         "Editors files.", reason="fileNotDownloadable", location="alt")
            return Response(200, f["content"], {"Content-Type": f["mimeType"]})
        return self._file_answer(req, f)

    # --- POST /drive/v3/files (metadata only) ---
    def create(self, req, m):
        if req.body.strip() and req.media_type() != "application/json":
            return google_error(400, "Metadata must be sent as application/json.", reason="badContent")
        try:
            raw = req.json() if req.body.strip() else {}
        except BadRequest as e:
            return google_error(400, f"Invalid JSON payload received. {e}", reason="parseError")
        meta, err = self._check_metadata(req, raw, for_upload=False)
        if err:
            return err
        mime = meta["mimeType"] or "application/octet-stream"
        content = None if mime.startswith("application/vnd.google-apps.") else b""
        return self._file_answer(req, self._store(meta, mime, content))

    # --- POST /upload/drive/v3/files ---
    def upload(self, req, m):
        kind = req.q("uploadType")
        if kind == "multipart":
            return self._multipart(req)
        if kind == "media":
            meta, err = self._check_metadata(req, {}, for_upload=True)
            if err:
                return err
            mime = req.media_type() or "application/octet-stream"
            return self._file_answer(req, self._store(meta, mime, req.body))
        if kind == "resumable":
            return self._initiate(req)
        return invalid("uploadType", f"Invalid uploadType: {kind}" if kind else "Missing uploadType")

    def _multipart(self, req):
        if req.media_type() != "multipart/related":
            return google_error(400, "Multipart upload needs Content-Type multipart/related.", reason="badContent")
        try:
            parts = parse_multipart_related(req.header("content-type"), req.body)
        except ValueError as e:
            return google_error(400, f"Malformed multipart body: {e}", reason="badContent")
        if len(parts) != 2:
            return google_error(400, f"Multipart upload needs exactly 2 parts, got {len(parts)}", reason="badContent")
        (mh, mbody), (ch, content) = parts
        if not mh.get("content-type", "").lower().startswith("application/json"):
            return google_error(400, "The first part must be the JSON metadata.", reason="badContent")
        try:
            raw = json.loads(mbody.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return google_error(400, f"Invalid JSON payload received. {e}", reason="parseError")
        if ch.get("content-transfer-encoding", "").lower() == "base64":
            try:
                content = base64.b64decode(content, validate=False)
            except binascii.Error:
                return google_error(400, "Invalid base64 media part.", reason="badContent")
        meta, err = self._check_metadata(req, raw, for_upload=True)
        if err:
            return err
        mime = meta["mimeType"] or ch.get("content-type", "").split(";")[0].strip() or "application/octet-stream"
        return self._file_answer(req, self._store(meta, mime, content))

    def _initiate(self, req):
        raw = {}
        if req.body.strip():
            if req.media_type() != "application/json":
                return google_error(400, "Metadata must be sent as application/json.", reason="badContent")
            try:
                raw = req.json()
            except BadRequest as e:
                return google_error(400, f"Invalid JSON payload received. {e}", reason="parseError")
        meta, err = self._check_metadata(req, raw, for_upload=True)
        if err:
            return err
        total = req.header("x-upload-content-length")
        if total is not None:
            try:
                total = int(total)
                if total < 0:
                    raise ValueError
            except ValueError:
                return invalid("X-Upload-Content-Length", "Invalid X-Upload-Content-Length")
        uid = "ADPy" + secrets.token_urlsafe(30)
        self.uploads[uid] = {"meta": meta, "mime": meta["mimeType"] or req.header("x-upload-content-type")
                             or "application/octet-stream", "total": total, "data": bytearray(), "file": None}
        query = req.raw_query + ("&" if req.raw_query else "") + "upload_id=" + uid
        base = req.host_url() or self.app.base_url
        return Response(200, b"", {"Location": f"{base}/upload/drive/v3/files?{query}", "X-GUploader-UploadID": uid})

    # --- PUT <session URI> ---
    def upload_chunk(self, req, m):
        uid = req.q("upload_id")
        s = self.uploads.get(uid) if uid else None
        if s is None:
            return google_error(404, "Not Found: the upload session does not exist or has expired.",
                                reason="notFound", location="upload_id")
        if s["file"] is not None:
            return self._file_answer(req, s["file"])
        cr = req.header("content-range")
        received = len(s["data"])
        if cr is None:
            a, b, total = 0, len(req.body) - 1, len(req.body)
            query = False
        else:
            mm = re.fullmatch(r"\s*bytes\s+(?:\*|(\d+)-(\d+))/(\*|\d+)\s*", cr)
            if not mm:
                return google_error(400, f"Failed to parse Content-Range header: {cr}", reason="badRequest")
            query = mm.group(1) is None
            total = None if mm.group(3) == "*" else int(mm.group(3))
            if not query:
                a, b = int(mm.group(1)), int(mm.group(2))
                if b < a or b - a + 1 != len(req.body):
                    return google_error(400, f"Content-Range {cr} does not match the {len(req.body)} bytes sent.",
                                        reason="badRequest")
            elif req.body:
                return google_error(400, "A status query (bytes */N) must have an empty body.", reason="badRequest")
        if total is not None:
            if s["total"] is not None and s["total"] != total:
                return google_error(400, f"The total size {total} differs from the {s['total']} declared before.",
                                    reason="badRequest")
            s["total"] = total
        if not query:
            if a > received:
                return google_error(400, f"Invalid request. According to the Content-Range header, the upload offset "
                                         f"is {a} byte(s), which exceeds already uploaded size of {received} byte(s).",
                                    reason="badRequest")
            new = req.body[received - a:]
            if self.break_after is not None and received + len(new) > self.break_after:
                keep = max(0, self.break_after - received)
                s["data"] += new[:keep]
                self.break_after = None
                return Response.dropped()
            s["data"] += new
        got = len(s["data"])
        if s["total"] is not None and got > s["total"]:
            return google_error(400, f"Received {got} bytes, more than the declared {s['total']}.", reason="badRequest")
        if s["total"] is not None and got == s["total"]:
            s["file"] = self._store(s["meta"], s["mime"], s["data"])
            return self._file_answer(req, s["file"])
        headers = {"Range": f"bytes=0-{got - 1}"} if got else {}
        headers["X-GUploader-UploadID"] = uid
        return Response(308, b"", headers, reason="Resume Incomplete")
