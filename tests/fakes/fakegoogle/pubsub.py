"""Fake Cloud Pub/Sub REST v1 (target "pubsub"; ops "pubsub.pull", "pubsub.acknowledge",
"pubsub.modifyAckDeadline", "pubsub.publish", "pubsub.topic", "pubsub.subscription"), a push sender
that signs Google-style OIDC tokens, and the JWKS that verifies them (target "jwks").

  POST /v1/projects/{p}/subscriptions/{s}:pull               {"maxMessages": N, "returnImmediately"?: bool}
  POST /v1/projects/{p}/subscriptions/{s}:acknowledge        {"ackIds": [..]}
  POST /v1/projects/{p}/subscriptions/{s}:modifyAckDeadline  {"ackIds": [..], "ackDeadlineSeconds": 0..600}
  GET  /v1/projects/{p}/subscriptions/{s}                    the subscription
  GET|PUT /v1/projects/{p}/topics/{t}                        every topic exists implicitly: {"name": ..}
  POST /v1/projects/{p}/topics/{t}:publish                   {"messages": [{"data": b64, "attributes"?}]}
  GET  /oauth2/v3/certs                                      JWKS of the push sender's key (no auth)

The `:` before a method may also be sent as %3A.

pull answers {"receivedMessages": [{"ackId", "message": {"data", "messageId", "publishTime",
"attributes"}, "deliveryAttempt"}]}, or {} when nothing is ready. Without returnImmediately=true an
empty pull is held up to `pull_hold_ms` (default 1000) for a message to arrive. A delivered message
that is not acknowledged before its deadline is delivered again with a new ackId and deliveryAttempt
+ 1. modifyAckDeadline 0 makes it available at once. An ackId is valid only until its deadline passes
or the message is delivered again; acknowledging an unknown, stale or expired ackId is ignored (200),
as Pub/Sub does. With --pubsub-no-auth the Pub/Sub routes need no bearer (PUBSUB_EMULATOR_HOST mode).

Push: a subscription created with "push_endpoint" gets every message POSTed by background threads
(4 at once), one message per request:
  {"message": {"data", "messageId", "message_id", "publishTime", "publish_time", "attributes"},
   "subscription": "projects/p/subscriptions/s"}
with `Authorization: Bearer <OIDC JWT>`, RS256 by the fake's own key (header kid), claims
iss=https://accounts.google.com, aud=push_audience (default: the endpoint), email=push_service_account,
email_verified=true, iat, exp=iat+3600, azp, sub. Only 102/200/201/202/204 count as an ack; anything
else (or no answer within the ack deadline) is retried after 0.1 s, 0.2 s, 0.4 s ... (at most 10 s).

Control:
  POST /_fake/pubsub/subscription {"subscription": "projects/p/subscriptions/s", "topic": "projects/p/topics/t",
                                   "ack_deadline_seconds": 10, "push_endpoint"?, "push_audience"?,
                                   "push_service_account"?}           create or replace (its queue is emptied)
  POST /_fake/pubsub/publish      {"topic": .., "data": "<text>" | "data_b64": "..", "attributes"?: {..}}
  POST /_fake/pubsub/push_mode    {"mode": "good" | "bad_signature" | "wrong_audience" | "expired"}
  POST /_fake/pubsub/pull_hold    {"ms": N}     how long an empty pull is held (default 1000)
  POST /_fake/pubsub/oidc_token   {"audience": .., "email": .., "mode"?: ..}  -> {"token": ..} as the push
                                  sender would sign it (for tests that call a push handler directly)
  POST /_fake/pubsub/rotate_key   a new signing key (new kid); the JWKS keeps the old one too
  GET  /_fake/pubsub/stats        {"published", "acked", "outstanding", "redeliveries", "pushed",
                                   "push_failures", "subscriptions": {name: {"outstanding", "acked", ...}}}
"""

import base64
import http.client
import json
import secrets
import sys
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .server import BadRequest, Response, google_error

ACK_STATUSES = {102, 200, 201, 202, 204}
PUSH_WORKERS = 4
_SEG = r"[^/:%]+"
_COLON = r"(?::|%3[Aa])"


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(n):
    return n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")


def _rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class _Key:
    def __init__(self):
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(20)

    def jwk(self):
        pub = self.private.public_key().public_numbers()
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": _b64url(_int_bytes(pub.n)), "e": _b64url(_int_bytes(pub.e))}


class PubSub:
    def __init__(self, no_auth=False):
        self.no_auth = no_auth
        self.keys = [_Key()]           # keys[-1] signs; all are published in the JWKS
        self.bad_key = _Key()          # never published: "bad_signature" tokens use it with a real kid
        self.message_counter = 0       # never reset: ids stay unique across resets
        self.ack_counter = 0
        self.app = None
        self.cond = None
        self.reset()

    def reset(self):
        self.subs = {}
        self.ack_ids = {}              # ackId -> (subscription, message id)
        self.stats = {"published": 0, "acked": 0, "redeliveries": 0, "pushed": 0, "push_failures": 0}
        self.push_mode = "good"
        self.pull_hold_ms = 1000
        if self.cond is not None:
            self.cond.notify_all()

    def register(self, app):
        self.app = app
        self.cond = threading.Condition(app.lock)
        auth = not self.no_auth
        sub = rf"/v1/projects/(?P<project>{_SEG})/subscriptions/(?P<sub>{_SEG})"
        topic = rf"/v1/projects/(?P<project>{_SEG})/topics/(?P<topic>{_SEG})"
        app.add_route("POST", sub + _COLON + "pull", "pubsub", self.pull, op="pubsub.pull", auth=auth)
        app.add_route("POST", sub + _COLON + "acknowledge", "pubsub", self.acknowledge, op="pubsub.acknowledge", auth=auth)
        app.add_route("POST", sub + _COLON + "modifyAckDeadline", "pubsub", self.modify_ack_deadline,
                      op="pubsub.modifyAckDeadline", auth=auth)
        app.add_route("GET", sub, "pubsub", self.get_subscription, op="pubsub.subscription", auth=auth)
        app.add_route("GET", topic, "pubsub", self.get_topic, op="pubsub.topic", auth=auth)
        app.add_route("PUT", topic, "pubsub", self.get_topic, op="pubsub.topic", auth=auth)
        app.add_route("POST", topic + _COLON + "publish", "pubsub", self.publish_route, op="pubsub.publish", auth=auth)
        app.add_route("GET", r"/oauth2/v3/certs", "jwks", self.jwks, auth=False)
        app.add_control("POST", r"/_fake/pubsub/subscription", self._ctl_subscription)
        app.add_control("POST", r"/_fake/pubsub/publish", self._ctl_publish)
        app.add_control("POST", r"/_fake/pubsub/push_mode", self._ctl_push_mode)
        app.add_control("POST", r"/_fake/pubsub/pull_hold", self._ctl_pull_hold)
        app.add_control("POST", r"/_fake/pubsub/oidc_token", self._ctl_oidc_token)
        app.add_control("POST", r"/_fake/pubsub/rotate_key", self._ctl_rotate_key)
        app.add_control("GET", r"/_fake/pubsub/stats", self._ctl_stats)
        for i in range(PUSH_WORKERS):
            threading.Thread(target=self._push_worker, name=f"push-{i}", daemon=True).start()

    # --- publishing (also called by the Gmail fake, with app.lock held) ---
    def publish(self, topic, data, attributes=None):
        """Queues `data` (bytes) on every subscription of `topic`; returns the message id."""
        with self.app.lock:
            self.message_counter += 1
            mid = str(4000000000000000 + self.message_counter * 7 + secrets.randbelow(7))
            now = time.time()
            for s in self.subs.values():
                if s["topic"] == topic:
                    s["messages"][mid] = {"id": mid, "data": base64.b64encode(data).decode("ascii"),
                                          "attributes": dict(attributes or {}), "publishTime": _rfc3339(now),
                                          "attempt": 0, "state": "ready", "deadline": 0.0, "not_before": 0.0,
                                          "ack_id": None}
            self.stats["published"] += 1
            self.cond.notify_all()
            return mid

    # --- delivery bookkeeping (app.lock held) ---
    def _refresh(self, s, now):
        for msg in s["messages"].values():
            if msg["state"] == "out" and msg["deadline"] <= now:
                msg["state"] = "ready"
                self.ack_ids.pop(msg["ack_id"], None)
                msg["ack_id"] = None

    def _ready(self, s, now, limit):
        self._refresh(s, now)
        return [m for m in s["messages"].values() if m["state"] == "ready" and m["not_before"] <= now][:limit]

    def _deliver(self, s, msg, now):
        msg["attempt"] += 1
        if msg["attempt"] > 1:
            self.stats["redeliveries"] += 1
            s["redeliveries"] += 1
        self.ack_counter += 1
        ack_id = f"ack-{self.ack_counter}-{secrets.token_hex(6)}"
        if msg["ack_id"]:
            self.ack_ids.pop(msg["ack_id"], None)
        msg["ack_id"] = ack_id
        msg["state"] = "out"
        msg["deadline"] = now + s["ack_deadline"]
        self.ack_ids[ack_id] = (s["name"], msg["id"])
        return ack_id

    def _current(self, ack_id, sub_name, now):
        """The message an ackId still stands for, or None (unknown, stale, expired, other subscription)."""
        ref = self.ack_ids.get(ack_id)
        if ref is None or ref[0] != sub_name:
            return None
        s = self.subs.get(ref[0])
        msg = s["messages"].get(ref[1]) if s else None
        if msg is None or msg["ack_id"] != ack_id or msg["state"] != "out" or msg["deadline"] <= now:
            return None
        return s, msg

    def _settle_ack(self, s, msg):
        del s["messages"][msg["id"]]
        self.ack_ids.pop(msg["ack_id"], None)
        self.stats["acked"] += 1
        s["acked"] += 1

    # --- routes ---
    def _sub(self, m):
        name = f"projects/{m['project']}/subscriptions/{m['sub']}"
        s = self.subs.get(name)
        if s is None:
            return name, None, google_error(404, f"Resource not found (resource={m['sub']}).", "notFound")
        return name, s, None

    def _body(self, req):
        try:
            body = req.json() if req.body.strip() else {}
        except BadRequest as e:
            return None, google_error(400, f"Invalid JSON payload received. {e}", "badRequest")
        if not isinstance(body, dict):
            return None, google_error(400, "Invalid JSON payload received. Expected an object.", "badRequest")
        return body, None

    def _ack_ids(self, body):
        ids = body.get("ackIds")
        if not isinstance(ids, list) or not ids or not all(isinstance(a, str) and a for a in ids):
            return None, google_error(400, "No ack ids specified.", "badRequest")
        return ids, None

    def pull(self, req, m):
        name, s, err = self._sub(m)
        if err:
            return err
        body, err = self._body(req)
        if err:
            return err
        n = body.get("maxMessages")
        if isinstance(n, str) and n.isdigit():
            n = int(n)
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            return google_error(400, "Invalid max_messages; must be > 0.", "badRequest")
        deadline = time.monotonic() + (0 if body.get("returnImmediately") else self.pull_hold_ms / 1000.0)
        while True:
            now = time.monotonic()
            s = self.subs.get(name)
            if s is None:  # removed by a reset while we waited
                return google_error(404, f"Resource not found (resource={m['sub']}).", "notFound")
            ready = self._ready(s, now, n)
            if ready or now >= deadline:
                break
            waits = [deadline - now] + [x["deadline"] - now for x in s["messages"].values() if x["state"] == "out"]
            waits += [x["not_before"] - now for x in s["messages"].values() if x["state"] == "ready"]
            self.cond.wait(max(0.005, min(w for w in waits if w > 0)))
        out = []
        for msg in ready:
            ack_id = self._deliver(s, msg, now)
            message = {"data": msg["data"], "messageId": msg["id"], "publishTime": msg["publishTime"],
                       "attributes": msg["attributes"]}
            out.append({"ackId": ack_id, "message": message, "deliveryAttempt": msg["attempt"]})
        return Response.json(200, {"receivedMessages": out} if out else {})

    def acknowledge(self, req, m):
        name, s, err = self._sub(m)
        if err:
            return err
        body, err = self._body(req)
        if err:
            return err
        ids, err = self._ack_ids(body)
        if err:
            return err
        now = time.monotonic()
        for a in ids:
            found = self._current(a, name, now)
            if found:
                self._settle_ack(*found)
        return Response.json(200, {})

    def modify_ack_deadline(self, req, m):
        name, s, err = self._sub(m)
        if err:
            return err
        body, err = self._body(req)
        if err:
            return err
        ids, err = self._ack_ids(body)
        if err:
            return err
        secs = body.get("ackDeadlineSeconds")
        if not isinstance(secs, int) or isinstance(secs, bool) or not 0 <= secs <= 600:
            return google_error(400, f"Invalid ack deadline given: {secs}. The minimum deadline is 0 seconds and the "
                                     "maximum is 600 seconds.", "badRequest")
        now = time.monotonic()
        for a in ids:
            found = self._current(a, name, now)
            if not found:
                continue
            _, msg = found
            if secs == 0:
                msg["state"] = "ready"
                self.ack_ids.pop(a, None)
                msg["ack_id"] = None
            else:
                msg["deadline"] = now + secs
        self.cond.notify_all()
        return Response.json(200, {})

    def get_subscription(self, req, m):
        name, s, err = self._sub(m)
        if err:
            return err
        out = {"name": name, "topic": s["topic"], "ackDeadlineSeconds": s["ack_deadline"]}
        if s["push_endpoint"]:
            out["pushConfig"] = {"pushEndpoint": s["push_endpoint"],
                                 "oidcToken": {"serviceAccountEmail": s["push_service_account"],
                                               "audience": s["push_audience"]}}
        return Response.json(200, out)

    def get_topic(self, req, m):
        return Response.json(200, {"name": f"projects/{m['project']}/topics/{m['topic']}"})

    def publish_route(self, req, m):
        body, err = self._body(req)
        if err:
            return err
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return google_error(400, "The request contains no messages.", "badRequest")
        decoded = []
        for x in msgs:
            try:
                decoded.append((base64.b64decode(x.get("data", "") or "", validate=False), x.get("attributes") or {}))
            except (ValueError, AttributeError):
                return google_error(400, "Invalid data in message: not base64.", "badRequest")
        topic = f"projects/{m['project']}/topics/{m['topic']}"
        return Response.json(200, {"messageIds": [self.publish(topic, d, a) for d, a in decoded]})

    def jwks(self, req, m):
        return Response.json(200, {"keys": [k.jwk() for k in self.keys]},
                             {"Cache-Control": "public, max-age=3600, must-revalidate, no-transform"})

    # --- OIDC tokens ---
    def oidc_token(self, audience, email, mode="good"):
        now = int(time.time())
        key = self.bad_key if mode == "bad_signature" else self.keys[-1]
        kid = self.keys[-1].kid
        iat = now - 7200 if mode == "expired" else now
        claims = {"aud": "https://wrong-audience.example.com/push" if mode == "wrong_audience" else audience,
                  "azp": "105032462094755271933", "email": email, "email_verified": True,
                  "exp": iat + 3600, "iat": iat, "iss": "https://accounts.google.com", "sub": "105032462094755271933"}
        header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
        signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = key.private.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    # --- push sender ---
    def _take_push(self):
        """With app.lock held: (subscription, message, ack_id) of one message to push, or None."""
        now = time.monotonic()
        for s in self.subs.values():
            if not s["push_endpoint"]:
                continue
            ready = self._ready(s, now, 1)
            if ready:
                return s, ready[0], self._deliver(s, ready[0], now)
        return None

    def _next_wake(self):
        now = time.monotonic()
        times = [1.0]
        for s in self.subs.values():
            if not s["push_endpoint"]:
                continue
            for x in s["messages"].values():
                t = x["deadline"] if x["state"] == "out" else x["not_before"]
                times.append(max(0.005, t - now))
        return min(times)

    def _push_worker(self):
        while True:
            with self.app.lock:
                job = self._take_push()
                if job is None:
                    self.cond.wait(self._next_wake())
                    continue
                s, msg, ack_id = job
                endpoint, timeout = s["push_endpoint"], s["ack_deadline"]
                body = {"message": {"data": msg["data"], "messageId": msg["id"], "message_id": msg["id"],
                                    "publishTime": msg["publishTime"], "publish_time": msg["publishTime"],
                                    "attributes": msg["attributes"]},
                        "subscription": s["name"]}
                token = self.oidc_token(s["push_audience"] or endpoint, s["push_service_account"], self.push_mode)
                attempt = msg["attempt"]
            status = self._post(endpoint, body, token, timeout)
            with self.app.lock:
                self.stats["pushed"] += 1
                found = self._current(ack_id, s["name"], time.monotonic())
                if status in ACK_STATUSES:
                    if found:
                        self._settle_ack(*found)
                    continue
                self.stats["push_failures"] += 1
                if found:
                    _, m = found
                    m["state"] = "ready"
                    self.ack_ids.pop(ack_id, None)
                    m["ack_id"] = None
                    m["not_before"] = time.monotonic() + min(10.0, 0.1 * 2 ** (attempt - 1))
                    self.cond.notify_all()

    def _post(self, endpoint, body, token, timeout):
        u = urllib.parse.urlsplit(endpoint)
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        try:
            conn = conn_cls(u.hostname, u.port, timeout=timeout)
            try:
                path = (u.path or "/") + (f"?{u.query}" if u.query else "")
                conn.request("POST", path, body=json.dumps(body).encode("utf-8"),
                             headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                                      "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            sys.stderr.write(f"[{self.app.name}] push to {endpoint} failed: {e!r}\n")
            return 0
        if status not in ACK_STATUSES:
            sys.stderr.write(f"[{self.app.name}] push to {endpoint} answered {status} (nack)\n")
        return status

    # --- control ---
    def _ctl_subscription(self, req, m):
        try:
            body = req.json()
            name, topic = body["subscription"], body["topic"]
            assert isinstance(name, str) and name.startswith("projects/") and "/subscriptions/" in name
            assert isinstance(topic, str) and topic.startswith("projects/") and "/topics/" in topic
            deadline = int(body.get("ack_deadline_seconds") or 10)
            assert 1 <= deadline <= 600
        except Exception:
            return Response.json(400, {"error": 'body must be {"subscription": "projects/p/subscriptions/s", '
                                                '"topic": "projects/p/topics/t", "ack_deadline_seconds": 10, '
                                                '"push_endpoint"?, "push_audience"?, "push_service_account"?}'})
        with self.app.lock:
            for a in [a for a, ref in self.ack_ids.items() if ref[0] == name]:
                del self.ack_ids[a]
            self.subs[name] = {"name": name, "topic": topic, "ack_deadline": deadline,
                               "push_endpoint": body.get("push_endpoint") or None,
                               "push_audience": body.get("push_audience") or None,
                               "push_service_account": body.get("push_service_account") or "",
                               "messages": {}, "acked": 0, "redeliveries": 0}
            self.cond.notify_all()
        return Response.json(200, {"subscription": name, "topic": topic, "ack_deadline_seconds": deadline})

    def _ctl_publish(self, req, m):
        try:
            body = req.json()
            topic = body["topic"]
            data = base64.b64decode(body["data_b64"]) if "data_b64" in body else body["data"].encode("utf-8")
        except Exception:
            return Response.json(400, {"error": 'body must be {"topic": .., "data": "<text>" | "data_b64": ".."}'})
        return Response.json(200, {"messageId": self.publish(topic, data, body.get("attributes"))})

    def _ctl_push_mode(self, req, m):
        body = req.json() if req.body.strip() else {}
        mode = body.get("mode")
        if mode not in ("good", "bad_signature", "wrong_audience", "expired"):
            return Response.json(400, {"error": "mode must be good, bad_signature, wrong_audience or expired"})
        with self.app.lock:
            self.push_mode = mode
        return Response.json(200, {"mode": mode})

    def _ctl_pull_hold(self, req, m):
        try:
            ms = int(req.json()["ms"])
            assert ms >= 0
        except Exception:
            return Response.json(400, {"error": 'body must be {"ms": N}'})
        with self.app.lock:
            self.pull_hold_ms = ms
        return Response.json(200, {"ms": ms})

    def _ctl_oidc_token(self, req, m):
        body = req.json() if req.body.strip() else {}
        mode = body.get("mode", "good")
        if mode not in ("good", "bad_signature", "wrong_audience", "expired"):
            return Response.json(400, {"error": "mode must be good, bad_signature, wrong_audience or expired"})
        with self.app.lock:
            return Response.json(200, {"token": self.oidc_token(body.get("audience", ""), body.get("email", ""), mode)})

    def _ctl_rotate_key(self, req, m):
        with self.app.lock:
            self.keys.append(_Key())
            return Response.json(200, {"kid": self.keys[-1].kid})

    def _ctl_stats(self, req, m):
        with self.app.lock:
            subs = {name: {"topic": s["topic"], "outstanding": len(s["messages"]), "acked": s["acked"],
                           "redeliveries": s["redeliveries"],
                           "delivered_unacked": sum(1 for x in s["messages"].values() if x["state"] == "out")}
                    for name, s in self.subs.items()}
            out = dict(self.stats)
            out["outstanding"] = sum(v["outstanding"] for v in subs.values())
            out["subscriptions"] = subs
            return Response.json(200, out)
