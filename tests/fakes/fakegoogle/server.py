"""Plumbing shared by every fake server (fake_google.py and fake_ncb.py).

An App holds routes, the recorded requests, the scripted responses and the services' state,
all behind one lock. Services register routes ("target" = the coarse name a test scripts and
queries, e.g. "sheets"; "op" = an optional finer one, e.g. "sheets.append") and control
endpoints under /_fake/.

Request flow for a non-/_fake/ request:
  1. the body is read in full (Content-Length or chunked);
  2. the route is resolved from method + path (404 / 405 otherwise);
  3. a scripted response queued for the op, else for the target, answers it if there is one
     (before authentication and before any normal handling);
  4. otherwise the app's authenticator runs (routes with auth=True), then the handler;
  5. the request is recorded (before the answer goes out, so a test that got its answer
     always finds the record), then answered or dropped.

Built-in control API (no auth):
  POST /_fake/reset     {"requests_only": false}  clears records, scripts and (unless
                        requests_only) every service's state back to the CLI configuration
  POST /_fake/script    {"target": "t", "responses": [{"status", "body", "headers", "count",
                        "delay_ms", "drop_connection", "for_seconds", "gzip"}]}
                        ("gzip": true sends the body gzip-compressed, with Content-Encoding)
                        or {"target": "t", "for_seconds": 5, "response": {...}}
  GET  /_fake/requests[?target=t]   recorded requests (target matches target or op)
  GET  /_fake/health    {"ok": true}
"""

import gzip
import json
import os
import signal
import sys
import threading
import time
import traceback
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def now_ms():
    return int(time.time() * 1000)


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Response:
    """What a handler returns. `drop=True` closes the connection without answering."""

    def __init__(self, status=200, body=b"", headers=None, reason=None, drop=False):
        self.status = status
        self.body = body if isinstance(body, (bytes, bytearray)) else str(body).encode("utf-8")
        self.headers = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
        self.reason = reason
        self.drop = drop

    @classmethod
    def json(cls, status, obj, headers=None):
        h = [("Content-Type", "application/json; charset=UTF-8")]
        h += list((headers or {}).items())
        return cls(status, dumps(obj), h)

    @classmethod
    def text(cls, status, text, headers=None):
        h = [("Content-Type", "text/plain; charset=UTF-8")]
        h += list((headers or {}).items())
        return cls(status, text.encode("utf-8"), h)

    @classmethod
    def dropped(cls):
        return cls(0, drop=True)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


# --- Google error envelope (notes §0): code, message, errors[0].reason, status ---------------

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ALREADY_EXISTS", 410: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
DEFAULT_REASONS = {400: "badRequest", 401: "authError", 403: "forbidden", 404: "notFound", 409: "duplicate",
                   429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}


def google_error(code, message, reason=None, status=None, domain="global", details=None,
                 location=None, location_type=None, headers=None):
    err = {"message": message, "domain": domain, "reason": reason or DEFAULT_REASONS.get(code, "unknown")}
    if location:
        err["location"] = location
        err["locationType"] = location_type or "parameter"
    body = {"code": code, "message": message, "errors": [err], "status": status or STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        body["details"] = details
    return Response.json(code, {"error": body}, headers)


# --- requests ---------------------------------------------------------------------------------

class BadRequest(Exception):
    """Raised by Request.json() for an unparsable body; handlers turn it into their own error."""


class Request:
    def __init__(self, method, raw_target, headers, body, client_host):
        self.method = method
        split = urllib.parse.urlsplit(raw_target)
        self.path = split.path                      # still percent-encoded
        self.raw_query = split.query
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.headers = headers                      # lower-case name -> value
        self.body = body
        self.client_host = client_host
        self.target = None
        self.op = None
        self.auth = None                            # what the authenticator learned (token record)
        self.arrived_ms = now_ms()

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default

    def flag(self, name):
        return (self.q(name, "") or "").lower() == "true"

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise BadRequest(str(e)) from None

    def media_type(self):
        return (self.header("content-type", "") or "").split(";")[0].strip().lower()

    def host_url(self):
        host = self.header("host")
        return f"http://{host}" if host else None

    def query_for_record(self):
        return {k: (v[0] if len(v) == 1 else v) for k, v in self.query.items()}


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


# --- scripts ----------------------------------------------------------------------------------

class ScriptEntry:
    def __init__(self, spec, count=None, for_seconds=None):
        self.spec = spec
        self.remaining = count
        self.for_seconds = for_seconds
        self.started = None

    def response(self):
        spec = self.spec
        status = int(spec.get("status", 200))
        headers = dict(spec.get("headers") or {})
        body = spec.get("body")
        if body is None:
            resp = Response(status, b"", headers)
        elif isinstance(body, str):
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "text/plain; charset=UTF-8"
            resp = Response(status, body.encode("utf-8"), headers)
        else:
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json; charset=UTF-8"
            resp = Response(status, dumps(body), headers)
        if spec.get("gzip"):
            resp.body = gzip.compress(resp.body)
            resp.headers.append(("Content-Encoding", "gzip"))
        if spec.get("drop_connection"):
            resp.drop = True
        return resp


def _parse_script_entry(spec):
    if not isinstance(spec, dict):
        raise ValueError("each response must be an object")
    if "for_seconds" in spec:
        return ScriptEntry(spec, for_seconds=float(spec["for_seconds"]))
    count = int(spec.get("count", 1))
    if count < 1:
        raise ValueError("count must be >= 1")
    return ScriptEntry(spec, count=count)


# --- the app ----------------------------------------------------------------------------------

class Route:
    def __init__(self, method, regex, target, handler, op, auth):
        import re
        self.method = method
        self.regex = re.compile(regex)
        self.target = target
        self.handler = handler
        self.op = op
        self.auth = auth


class App:
    def __init__(self, name):
        self.name = name
        self.lock = threading.RLock()
        self.routes = []
        self.controls = []
        self.services = []
        self.requests = []
        self.scripts = {}
        self.authenticator = None          # callable(req) -> Response (reject) or None (accept)
        self.echo_headers = []             # request headers copied onto every answer of a route
        self.base_url = None               # set once bound: http://host:port
        self.port = None
        self.add_control("POST", r"/_fake/reset", self._ctl_reset)
        self.add_control("POST", r"/_fake/script", self._ctl_script)
        self.add_control("GET", r"/_fake/requests", self._ctl_requests)
        self.add_control("GET", r"/_fake/health", lambda req, m: Response.json(200, {"ok": True}))

    # registration
    def add_route(self, method, regex, target, handler, op=None, auth=True):
        self.routes.append(Route(method, regex, target, handler, op, auth))

    def add_control(self, method, regex, handler):
        self.controls.append(Route(method, regex, "_fake", handler, None, False))

    def add_service(self, service):
        self.services.append(service)
        service.register(self)

    # control API
    def _ctl_reset(self, req, m):
        body = _json_or_empty(req)
        with self.lock:
            self.requests.clear()
            self.scripts.clear()
            if not body.get("requests_only"):
                for s in self.services:
                    s.reset()
        return Response.json(200, {"reset": True})

    def _ctl_script(self, req, m):
        body = _json_or_empty(req)
        target = body.get("target")
        if not isinstance(target, str) or not target:
            return Response.json(400, {"error": "target is required"})
        try:
            if "responses" in body:
                if not isinstance(body["responses"], list):
                    raise ValueError("responses must be a list")
                entries = [_parse_script_entry(s) for s in body["responses"]]
            elif "for_seconds" in body and isinstance(body.get("response"), dict):
                spec = dict(body["response"])
                spec["for_seconds"] = body["for_seconds"]
                entries = [_parse_script_entry(spec)]
            else:
                raise ValueError("need responses: [...] or for_seconds + response")
        except (ValueError, TypeError) as e:
            return Response.json(400, {"error": str(e)})
        with self.lock:
            self.scripts.setdefault(target, deque()).extend(entries)
            queued = len(self.scripts[target])
        return Response.json(200, {"target": target, "queued": queued})

    def _ctl_requests(self, req, m):
        target = req.q("target")
        with self.lock:
            out = [r for r in self.requests if target is None or r["target"] == target or r["op"] == target]
            return Response.json(200, out)

    # dispatch
    def resolve(self, req):
        path_matched = None
        for r in self.routes:
            m = r.regex.fullmatch(req.path)
            if m is None:
                continue
            if r.method == req.method:
                return r, m
            path_matched = path_matched or r
        return path_matched, None

    def take_script(self, names):
        with self.lock:
            for name in names:
                q = self.scripts.get(name)
                while q:
                    e = q[0]
                    if e.for_seconds is not None:
                        t = time.monotonic()
                        if e.started is None:
                            e.started = t
                        if t - e.started < e.for_seconds:
                            return e
                        q.popleft()
                        continue
                    e.remaining -= 1
                    if e.remaining <= 0:
                        q.popleft()
                    return e
        return None

    def record(self, req, status, dropped=False):
        rec = {"method": req.method, "path": req.path, "query": req.query_for_record(), "headers": dict(req.headers),
               "status_answered": status, "at_ms": req.arrived_ms, "target": req.target, "op": req.op,
               "body_size": len(req.body)}
        if dropped:
            rec["dropped"] = True
        with self.lock:
            self.requests.append(rec)

    def count_requests(self, name, method=None):
        with self.lock:
            return sum(1 for r in self.requests
                       if (r["target"] == name or r["op"] == name) and (method is None or r["method"] == method))


def _json_or_empty(req):
    if not req.body.strip():
        return {}
    try:
        v = req.json()
    except BadRequest:
        return {}
    return v if isinstance(v, dict) else {}


# --- HTTP -------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    # Headers and body go out as separate writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms a request), which would make every client look slow.
    disable_nagle_algorithm = True

    protocol_version = "HTTP/1.1"
    server_version = "docpipe-fake/1"
    sys_version = ""

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def log_message(self, fmt, *args):
        sys.stderr.write(f"[{self.server.app.name}] {self.address_string()} {fmt % args}\n")

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ValueError("truncated chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    raise ValueError("truncated chunk")
                out += chunk
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0:
            raise ValueError("negative Content-Length")
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise ValueError("truncated body")
        return data

    def _handle(self):
        app = self.server.app
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(Response.text(400, "bad request body\n"))
            return
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        req = Request(self.command, self.path, headers, body, self.client_address[0])

        if req.path.startswith("/_fake/"):
            for r in app.controls:
                m = r.regex.fullmatch(req.path)
                if m and r.method == req.method:
                    self._send(self._safe(lambda: r.handler(req, m)))
                    return
            self._send(Response.json(404, {"error": f"no control endpoint {req.method} {req.path}"}))
            return

        route, match = app.resolve(req)
        if route is None:
            req.target = "unknown"
            resp = Response.json(404, {"error": {"code": 404, "message": f"No route for {req.method} {req.path}",
                                                 "status": "NOT_FOUND"}})
        else:
            req.target, req.op = route.target, route.op
            script = app.take_script([n for n in (route.op, route.target) if n])
            if script is not None:
                delay = float(script.spec.get("delay_ms", 0) or 0)
                if delay > 0:
                    time.sleep(delay / 1000.0)
                resp = script.response()
            elif match is None:
                resp = Response.json(405, {"error": {"code": 405, "message": f"Method {req.method} not allowed",
                                                     "status": "INVALID_ARGUMENT"}})
            else:
                resp = self._safe(lambda: self._normal(app, route, match, req))
        for name in app.echo_headers:
            v = req.header(name)
            if v is not None and not resp.header(name):
                resp.headers.append((name, v))
        app.record(req, resp.status, dropped=resp.drop)
        if resp.drop:
            self.log_message('"%s" dropped the connection without answering', self.requestline)
            self.close_connection = True
            return
        self._send(resp)

    @staticmethod
    def _normal(app, route, match, req):
        with app.lock:
            if route.auth and app.authenticator is not None:
                rejected = app.authenticator(req)
                if rejected is not None:
                    return rejected
            return route.handler(req, match)

    def _safe(self, fn):
        try:
            return fn()
        except Exception:  # a fake's bug must show, not hang the client
            traceback.print_exc(file=sys.stderr)
            return Response.json(500, {"error": {"code": 500, "message": "fake server bug (see its stderr)",
                                                 "status": "INTERNAL"}})

    def _send(self, resp):
        self.send_response(resp.status, resp.reason)
        for k, v in resp.headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and resp.body:
            self.wfile.write(resp.body)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):  # the client gave up (e.g. its timeout): not a fake bug
            sys.stderr.write(f"[{self.app.name}] {client_address[0]} went away: {exc!r}\n")
            return
        super().handle_error(request, client_address)


def serve(app, host, port):
    """Binds, prints `LISTENING <port>`, serves until SIGTERM/SIGINT (or until the process named by
    DOCPIPE_FAKE_PARENT_PID is gone), returns the exit code."""
    server = Server((host, port), Handler)
    server.app = app
    app.port = server.server_address[1]
    app.base_url = f"http://{host}:{app.port}"
    stopping = threading.Event()

    def stop(*_):
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.environ.get("DOCPIPE_FAKE_PARENT_PID")
    if parent and parent.isdigit():
        threading.Thread(target=_watch_parent, args=(int(parent), stop), daemon=True).start()

    sys.stdout.write(f"LISTENING {app.port}\n")
    sys.stdout.flush()
    sys.stderr.write(f"[{app.name}] listening on {app.base_url}\n")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


def _watch_parent(pid, stop):
    # Only the process's existence counts: the parent's threads come and go, and a child
    # can be handed to another reaper while the test process is still alive.
    while True:
        time.sleep(0.5)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
    sys.stderr.write(f"parent {pid} is gone, stopping\n")
    stop()


def common_args(parser):
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--host", default="127.0.0.1")
    return parser
