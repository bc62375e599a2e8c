#!/usr/bin/env python3
"""Fake NCB claims API (the insurer's endpoint docpipe delivers claims to). This docstring is the
API's definition as far as docpipe is concerned.

    python3 tests/fakes/fake_ncb.py --api-key KEY [--port 0] [--host 127.0.0.1]

Prints `LISTENING <port>` on stdout once bound; logs go to stderr (never bodies). Stops on
SIGTERM/SIGINT, or when the process whose pid is in DOCPIPE_FAKE_PARENT_PID is gone.

POST /api/v1/claims/submit                            target "claims"
  Headers: Authorization: Bearer <KEY>               required, else 401 UNAUTHORIZED
           Idempotency-Key: <opaque, non-empty>      required, else 400 MISSING_IDEMPOTENCY_KEY
           Content-Type: application/json            else 415 UNSUPPORTED_MEDIA_TYPE
           X-Request-ID: <anything>                  optional; echoed back on the answer
  Body: one NCB record, a JSON object:
           "Event date"       "YYYY-MM-DD", a real calendar date
           "Claim Amount"     a JSON number > 0 (a string is refused)
           "Invoice Number"   non-empty string
           "Policy Number"    non-empty string
           "Submission Date"  present (any non-null value; docpipe sends ISO 8601 with offset)
         other keys are accepted and stored.
  201 {"claim_reference": "NCB-000001", "status": "RECEIVED", "received_at": "2026-11-29T10:00:00Z"}
      references are sequential per process (not reset by /_fake/reset, so they stay unique).
  200 the same body + header `Idempotent-Replayed: true` when the Idempotency-Key was already used
      with an identical body (compared as parsed JSON); the claim is not recorded again.
  Errors, all {"error": {"code": "<CODE>", "message": "<text>"[, "details": [...]]}}:
      400 MALFORMED_JSON          the body is not JSON
      400 VALIDATION_ERROR        "message" = the first problem ("Claim Amount must be greater than 0"),
                                  "details" = [{"field": "Claim Amount", "issue": "must be greater than 0"}, ...]
      400 MISSING_IDEMPOTENCY_KEY
      401 UNAUTHORIZED            "Invalid or missing API key"
      415 UNSUPPORTED_MEDIA_TYPE
      422 IDEMPOTENCY_KEY_REUSED  the key was used before with a different body
  Order of checks: auth, Content-Type, Idempotency-Key, JSON, validation, idempotency. A request that
  fails does not store its key.

GET /api/v1/health                                    target "health", no auth
  200 {"status": "ok"}

Control API (no auth), besides the common /_fake/reset, /_fake/script, /_fake/requests:
  GET /_fake/claims  {"claims": [{"claim_reference", "idempotency_key", "request_id", "record",
                                  "received_ms", "replays"}],
                      "attempts": <POSTs to /api/v1/claims/submit seen, including failed and scripted ones>,
                      "replayed": <200 Idempotent-Replayed answers>, "key_reused": <422 IDEMPOTENCY_KEY_REUSED answers>}
      received_ms  when the request that booked the claim arrived (epoch milliseconds; load tests measure
                   email -> NCB latency with it)
      replays      how many later requests repeated this claim's Idempotency-Key with the same body (each
                   answered 200 + Idempotent-Replayed, not booked): a client resending the same claim shows
                   here, where "claims" alone would hide it
Scripts for target "claims" answer before any check (e.g. 503 + Retry-After, or a dropped connection).
"""

import argparse
import datetime
import hmac
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakegoogle.server import App, BadRequest, Response, common_args, serve  # noqa: E402

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def ncb_error(status, code, message, details=None):
    err = {"code": code, "message": message}
    if details:
        err["details"] = details
    return Response.json(status, {"error": err})


def validate(record):
    """-> list of {"field", "issue"}, empty when the record is acceptable."""
    if not isinstance(record, dict):
        return [{"field": "", "issue": "body must be a JSON object"}]
    problems = []

    def bad(field, issue):
        problems.append({"field": field, "issue": issue})

    v = record.get("Event date")
    if v is None:
        bad("Event date", "is required")
    elif not isinstance(v, str) or not _DATE.fullmatch(v):
        bad("Event date", "must be a date in YYYY-MM-DD format")
    else:
        try:
            datetime.date.fromisoformat(v)
        except ValueError:
            bad("Event date", "is not a valid calendar date")

    v = record.get("Claim Amount")
    if v is None:
        bad("Claim Amount", "is required")
    elif isinstance(v, bool) or not isinstance(v, (int, float)):
        bad("Claim Amount", "must be a number")
    elif not v > 0:
        bad("Claim Amount", "must be greater than 0")

    for field in ("Invoice Number", "Policy Number"):
        v = record.get(field)
        if v is None:
            bad(field, "is required")
        elif not isinstance(v, str):
            bad(field, "must be a string")
        elif not v.strip():
            bad(field, "must not be empty")

    if record.get("Submission Date") is None:
        bad("Submission Date", "is required")
    return problems


class Ncb:
    def __init__(self, api_key):
        self.api_key = api_key
        self.sequence = 0           # never reset: references stay unique for the life of the process
        self.reset()

    def reset(self):
        self.claims = []
        self.by_key = {}            # idempotency key -> (canonical body, response body, index in claims)
        self.replayed = 0           # 200 Idempotent-Replayed answers
        self.key_reused = 0         # 422 IDEMPOTENCY_KEY_REUSED answers

    def register(self, app):
        self.app = app
        app.echo_headers.append("X-Request-ID")
        app.add_route("POST", r"/api/v1/claims/submit", "claims", self.post_claim)
        app.add_route("GET", r"/api/v1/health", "health", lambda req, m: Response.json(200, {"status": "ok"}),
                      auth=False)
        app.add_control("GET", r"/_fake/claims", self._ctl_claims)
        app.authenticator = self.check_key

    def check_key(self, req):
        scheme, _, key = req.header("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            return None
        return ncb_error(401, "UNAUTHORIZED", "Invalid or missing API key", None)

    def _ctl_claims(self, req, m):
        with self.app.lock:
            return Response.json(200, {"claims": [dict(c) for c in self.claims],
                                       "attempts": self.app.count_requests("claims", "POST"),
                                       "replayed": self.replayed, "key_reused": self.key_reused})

    def post_claim(self, req, m):
        if req.media_type() != "application/json":
            return ncb_error(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json")
        key = (req.header("idempotency-key") or "").strip()
        if not key:
            return ncb_error(400, "MISSING_IDEMPOTENCY_KEY", "The Idempotency-Key header is required")
        try:
            record = req.json()
        except BadRequest as e:
            return ncb_error(400, "MALFORMED_JSON", f"Request body is not valid JSON: {e}")
        problems = validate(record)
        if problems:
            first = problems[0]
            return ncb_error(400, "VALIDATION_ERROR", f"{first['field']} {first['issue']}".strip(), problems)
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
        seen = self.by_key.get(key)
        if seen is not None:
            if seen[0] != canonical:
                self.key_reused += 1
                return ncb_error(422, "IDEMPOTENCY_KEY_REUSED",
                                 "This Idempotency-Key was already used with a different request body")
            self.replayed += 1
            self.claims[seen[2]]["replays"] += 1
            return Response.json(200, seen[1], {"Idempotent-Replayed": "true"})
        self.sequence += 1
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        body = {"claim_reference": f"NCB-{self.sequence:06d}", "status": "RECEIVED",
                "received_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.by_key[key] = (canonical, body, len(self.claims))
        self.claims.append({"claim_reference": body["claim_reference"], "idempotency_key": key,
                            "request_id": req.header("x-request-id"), "record": record,
                            "received_ms": req.arrived_ms, "replays": 0})
        return Response.json(201, body, {"Location": f"/api/v1/claims/{body['claim_reference']}"})


def main():
    p = common_args(argparse.ArgumentParser(description="Fake NCB claims API (see the module docstring)"))
    p.add_argument("--api-key", required=True, help="the Bearer key clients must send")
    args = p.parse_args()
    app = App("fake_ncb")
    app.add_service(Ncb(args.api_key))
    return serve(app, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
