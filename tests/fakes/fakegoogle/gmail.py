"""Fake Gmail API v1 (target "gmail"; ops "gmail.watch", "gmail.stop", "gmail.getProfile", "gmail.history",
"gmail.list", "gmail.get", "gmail.modify", "gmail.labels.list", "gmail.labels.create").

All under /gmail/v1/users/{userId}, userId = `me` or the mailbox's address:
  POST watch                 {"topicName", "labelIds"?, "labelFilterBehavior"|"labelFilterAction"?: include|exclude}
                             -> {"historyId": "<str>", "expiration": "<epoch ms str>"}; publishes one notification
  POST stop                  204, no body
  GET  profile               {"emailAddress", "messagesTotal", "threadsTotal", "historyId"}
  GET  history               startHistoryId (required), historyTypes (repeatable), labelId, maxResults (<=500),
                             pageToken -> {"history"?: [...], "nextPageToken"?, "historyId"}; 404 notFound when
                             startHistoryId is below the retention floor
  GET  messages              q, labelIds (repeatable, AND), maxResults (<=500), pageToken, includeSpamTrash
                             -> {"messages"?: [{"id", "threadId"}], "nextPageToken"?, "resultSizeEstimate"}
  GET  messages/{id}         format=raw|minimal|full|metadata; raw = base64url of the RFC 2822 bytes; 404 if unknown
  POST messages/{id}/modify  {"addLabelIds", "removeLabelIds"}: one labelAdded / labelRemoved history record each
  GET  labels                {"labels": [...]};  POST labels {"name", ...}: 409 for a name taken (case-insensitive)

Which mailbox: a service-account token acts for its `sub` (domain-wide delegation); a service-account
token without `sub` gets 400 failedPrecondition, as from the real Gmail; an authorized-user token acts
for the default user (claims@example.com unless set by control). Another address than that gets 403.
Mailboxes spring into being on first use. historyIds grow with random gaps (1..37). Records are kept
forever; the retention floor only decides which startHistoryId values are refused.

Notifications: while a watch is active (not stopped, not expired), every change to a message matching
its label filter (a delivery, a label change, a deletion) publishes {"emailAddress", "historyId": <number>}
to the watch's topic through the Pub/Sub fake, as the real Gmail does; so do watch calls themselves.

q subset: label:X / -label:X (name or id, case-insensitive, '-' for ' ' or '/'), in:inbox, is:unread,
is:starred, newer_than:N[dhmy], older_than:N[dhmy]; other words match the raw text (case-insensitive).

Control:
  POST /_fake/gmail/deliver    {"user", "raw": "<text>" | "raw_b64": "..", "labelIds"?: ["INBOX","UNREAD"],
                                "internalDate"?: ms, "threadId"?} -> {"id", "threadId", "historyId"}
  POST /_fake/gmail/delete     {"user", "id"}            a messageDeleted record
  POST /_fake/gmail/relabel    {"user", "id", "add": [..], "remove": [..]}  as the user's own messages.modify
                               (a mail moved from Spam to the Inbox): labelAdded / labelRemoved records
  POST /_fake/gmail/retention  {"floor_history_id": N, "user"?}   (every mailbox when no user)
  POST /_fake/gmail/watch_expiration {"ms": N, "lifetime_ms"?: M}  active watches expire N ms from now;
                               lifetime_ms sets the lifetime of later watch calls (default 7 days)
  POST /_fake/gmail/notifications {"drop": true|false}   drop every notification (Gmail's are lossy)
  POST /_fake/gmail/paging     {"empty_pages": N}        history and list answer N empty pages (with a
                                                         nextPageToken) before the real ones
  POST /_fake/gmail/default_user {"user": ".."}
  GET  /_fake/gmail/messages[?user=]   {"messages": [{"user", "id", "threadId", "labelIds", "labels" (names),
                                        "historyId", "internalDate"}]}
  GET  /_fake/gmail/mailbox?user=      {"user", "historyId", "floor", "watch", "labels"}
"""

import base64
import email.parser
import json
import random
import re
import secrets
import shlex
import time
import urllib.parse

from .server import BadRequest, Response, google_error

SYSTEM_LABELS = ["INBOX", "SPAM", "TRASH", "UNREAD", "STARRED", "IMPORTANT", "SENT", "DRAFT", "CHAT",
                 "CATEGORY_PERSONAL", "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS", "CATEGORY_UPDATES", "CATEGORY_FORUMS"]
HISTORY_TYPES = {"messageAdded", "messageDeleted", "labelAdded", "labelRemoved"}
WEEK_MS = 7 * 24 * 3600 * 1000
NOT_FOUND = "Requested entity was not found."
_TOPIC = re.compile(r"projects/[^/]+/topics/[^/]+")
_UNITS_MS = {"d": 86400000, "h": 3600000, "m": 30 * 86400000, "y": 365 * 86400000}


def _now_ms():
    return int(time.time() * 1000)


def _token(obj):
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _untoken(text):
    try:
        v = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return v if isinstance(v, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None


def _norm(name):
    return name.lower().replace(" ", "-").replace("/", "-")


class Gmail:
    def __init__(self, pubsub=None):
        self.pubsub = pubsub
        self.message_counter = 0  # never reset: ids stay unique across resets
        self.reset()

    def reset(self):
        self.boxes = {}
        self.default_user = "claims@example.com"
        self.watch_lifetime_ms = WEEK_MS
        self.drop_notifications = False
        self.empty_pages = 0

    def register(self, app):
        self.app = app
        u = r"/gmail/v1/users/(?P<user>[^/]+)"
        mid = r"(?P<id>[^/]+)"
        app.add_route("POST", u + r"/watch", "gmail", self.watch, op="gmail.watch")
        app.add_route("POST", u + r"/stop", "gmail", self.stop, op="gmail.stop")
        app.add_route("GET", u + r"/profile", "gmail", self.profile, op="gmail.getProfile")
        app.add_route("GET", u + r"/history", "gmail", self.history, op="gmail.history")
        app.add_route("GET", u + r"/messages", "gmail", self.list_messages, op="gmail.list")
        app.add_route("GET", u + rf"/messages/{mid}", "gmail", self.get_message, op="gmail.get")
        app.add_route("POST", u + rf"/messages/{mid}/modify", "gmail", self.modify, op="gmail.modify")
        app.add_route("GET", u + r"/labels", "gmail", self.list_labels, op="gmail.labels.list")
        app.add_route("POST", u + r"/labels", "gmail", self.create_label, op="gmail.labels.create")
        app.add_control("POST", r"/_fake/gmail/deliver", self._ctl_deliver)
        app.add_control("POST", r"/_fake/gmail/delete", self._ctl_delete)
        app.add_control("POST", r"/_fake/gmail/relabel", self._ctl_relabel)
        app.add_control("POST", r"/_fake/gmail/retention", self._ctl_retention)
        app.add_control("POST", r"/_fake/gmail/watch_expiration", self._ctl_watch_expiration)
        app.add_control("POST", r"/_fake/gmail/notifications", self._ctl_notifications)
        app.add_control("POST", r"/_fake/gmail/paging", self._ctl_paging)
        app.add_control("POST", r"/_fake/gmail/default_user", self._ctl_default_user)
        app.add_control("GET", r"/_fake/gmail/messages", self._ctl_messages)
        app.add_control("GET", r"/_fake/gmail/mailbox", self._ctl_mailbox)

    # --- mailboxes (app.lock held) ---
    def _box(self, user):
        user = user.lower()
        box = self.boxes.get(user)
        if box is None:
            labels = {name: {"id": name, "name": name, "type": "system"} for name in SYSTEM_LABELS}
            box = {"user": user, "history_id": random.randint(100000, 999999), "messages": {}, "history": [],
                   "labels": labels, "label_counter": 0, "floor": 0, "watch": None, "seq": 0}
            self.boxes[user] = box
        return box

    def _bump(self, box):
        box["history_id"] += random.randint(1, 37)
        return box["history_id"]

    def _mailbox(self, req, m):
        """(box, None) or (None, error Response) for the route's userId and the caller's token."""
        uid = urllib.parse.unquote(m["user"]).lower()
        rec = req.auth or {}
        if rec.get("grant_type") == "service_account":
            subject = (rec.get("subject") or "").lower()
            if subject.endswith(".gserviceaccount.com"):
                return None, google_error(400, "Precondition check failed.", "failedPrecondition", "FAILED_PRECONDITION")
            owner = subject
        else:
            owner = self.default_user.lower()
        if uid not in ("me", owner):
            return None, google_error(403, f"Delegation denied for {owner}", "forbidden")
        return self._box(owner), None

    def _record(self, box, kind, msg, changed=None):
        hid = self._bump(box)
        box["history"].append({"id": hid, "type": kind, "message": {"id": msg["id"], "threadId": msg["threadId"]},
                               "msg_labels": list(msg["labelIds"]), "labelIds": list(changed or [])})
        msg["historyId"] = hid
        return hid

    def _notify(self, box, labels_involved):
        w = box["watch"]
        if w is None or self.pubsub is None or self.drop_notifications or w["expiration"] <= _now_ms():
            return
        if w["labelIds"]:
            hit = any(label in labels_involved for label in w["labelIds"])
            if hit != (w["behavior"] == "include"):
                return
        payload = json.dumps({"emailAddress": box["user"], "historyId": box["history_id"]}).encode("utf-8")
        self.pubsub.publish(w["topic"], payload)

    def _label_id(self, box, text):
        """A label id from an id or a name (case-insensitive), or None."""
        if text in box["labels"]:
            return text
        n = _norm(text)
        for lid, label in box["labels"].items():
            if _norm(label["name"]) == n or lid.lower() == text.lower():
                return lid
        return None

    @staticmethod
    def _body(req):
        try:
            body = req.json() if req.body.strip() else {}
        except BadRequest as e:
            return None, google_error(400, f"Invalid JSON payload received. {e}", "invalidArgument")
        if not isinstance(body, dict):
            return None, google_error(400, "Invalid JSON payload received.", "invalidArgument")
        return body, None

    @staticmethod
    def _max_results(req, default=100):
        try:
            return max(1, min(500, int(req.q("maxResults", default))))
        except ValueError:
            return None

    # --- routes ---
    def watch(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        body, err = self._body(req)
        if err:
            return err
        topic = body.get("topicName")
        if not topic:
            return google_error(400, "Invalid topicName. topicName required", "invalidArgument")
        if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
            return google_error(400, "Invalid topicName does not match projects/SOME_PROJECT/topics/SOME_TOPIC",
                                "invalidArgument")
        labels = body.get("labelIds") or []
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            return google_error(400, "Invalid labelIds", "invalidArgument")
        for x in labels:
            if x not in box["labels"]:
                return google_error(400, f"Invalid label: {x}", "invalidArgument")
        behavior = str(body.get("labelFilterBehavior") or body.get("labelFilterAction") or "include").lower()
        if behavior not in ("include", "exclude"):
            return google_error(400, f"Invalid labelFilterBehavior: {behavior}", "invalidArgument")
        expiration = _now_ms() + self.watch_lifetime_ms
        box["watch"] = {"topic": topic, "labelIds": labels, "behavior": behavior, "expiration": expiration}
        w = box["watch"]
        if self.pubsub is not None and not self.drop_notifications:
            payload = json.dumps({"emailAddress": box["user"], "historyId": box["history_id"]}).encode("utf-8")
            self.pubsub.publish(w["topic"], payload)
        return Response.json(200, {"historyId": str(box["history_id"]), "expiration": str(expiration)})

    def stop(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        box["watch"] = None
        return Response(204)

    def profile(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        threads = {x["threadId"] for x in box["messages"].values()}
        return Response.json(200, {"emailAddress": box["user"], "messagesTotal": len(box["messages"]),
                                   "threadsTotal": len(threads), "historyId": str(box["history_id"])})

    def history(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        try:
            start = int(req.q("startHistoryId", ""))
            assert start >= 0
        except (ValueError, AssertionError):
            return google_error(400, "Missing/invalid parameter: startHistoryId", "invalidArgument")
        types = req.query.get("historyTypes") or []
        for t in types:
            if t not in HISTORY_TYPES:
                return google_error(400, f"Invalid value at 'history_types' ({t})", "invalidArgument")
        label = req.q("labelId")
        limit = self._max_results(req)
        if limit is None:
            return google_error(400, "Invalid maxResults", "invalidArgument")
        if start < box["floor"]:
            return google_error(404, NOT_FOUND, "notFound")
        pos = {"o": 0, "e": 0}
        if req.q("pageToken"):
            pos = _untoken(req.q("pageToken"))
            if pos is None or pos.get("s") != start:
                return google_error(400, "Invalid pageToken", "invalidArgument")
        out = {"historyId": str(box["history_id"])}
        if pos["e"] < self.empty_pages:
            out["nextPageToken"] = _token({"s": start, "o": pos["o"], "e": pos["e"] + 1})
            return Response.json(200, out)
        records = [r for r in box["history"]
                   if r["id"] > start and (not types or r["type"] in types) and (not label or label in r["msg_labels"])]
        page = records[pos["o"]:pos["o"] + limit]
        if page:
            out["history"] = [self._history_json(r) for r in page]
        if pos["o"] + limit < len(records):
            out["nextPageToken"] = _token({"s": start, "o": pos["o"] + limit, "e": pos["e"]})
        return Response.json(200, out)

    @staticmethod
    def _history_json(r):
        ref = dict(r["message"])
        with_labels = dict(ref, labelIds=r["msg_labels"])
        out = {"id": str(r["id"]), "messages": [ref]}
        if r["type"] == "messageAdded":
            out["messagesAdded"] = [{"message": with_labels}]
        elif r["type"] == "messageDeleted":
            out["messagesDeleted"] = [{"message": ref}]
        elif r["type"] == "labelAdded":
            out["labelsAdded"] = [{"message": with_labels, "labelIds": r["labelIds"]}]
        else:
            out["labelsRemoved"] = [{"message": with_labels, "labelIds": r["labelIds"]}]
        return out

    def _matches(self, box, msg, terms):
        for negate, key, value in terms:
            if key == "label":
                lid = self._label_id(box, value)
                hit = lid is not None and lid in msg["labelIds"]
            elif key in ("newer_than", "older_than"):
                mt = re.fullmatch(r"(\d+)([dhmy])", value.lower())
                if not mt:
                    hit = False
                else:
                    edge = _now_ms() - int(mt.group(1)) * _UNITS_MS[mt.group(2)]
                    hit = msg["internalDate"] >= edge if key == "newer_than" else msg["internalDate"] < edge
            else:
                hit = value.lower().encode("utf-8") in msg["raw"].lower()
            if hit == negate:
                return False
        return True

    @staticmethod
    def _parse_q(q):
        try:
            words = shlex.split(q)
        except ValueError:
            words = q.split()
        terms = []
        for w in words:
            negate = w.startswith("-") and len(w) > 1
            if negate:
                w = w[1:]
            key, sep, value = w.partition(":")
            key = key.lower()
            if sep and key in ("label", "newer_than", "older_than"):
                terms.append((negate, key, value))
            elif sep and key == "in":
                terms.append((negate, "label", value.upper()))
            elif sep and key == "is" and value.lower() in ("unread", "starred", "important"):
                terms.append((negate, "label", value.upper()))
            else:
                terms.append((negate, "text", w))
        return terms

    def list_messages(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        limit = self._max_results(req)
        if limit is None:
            return google_error(400, "Invalid maxResults", "invalidArgument")
        terms = self._parse_q(req.q("q", "") or "")
        label_ids = req.query.get("labelIds") or []
        spam_trash = req.flag("includeSpamTrash")
        msgs = sorted(box["messages"].values(), key=lambda x: (-x["internalDate"], -x["seq"]))
        hits = [x for x in msgs
                if all(label in x["labelIds"] for label in label_ids)
                and (spam_trash or not ({"SPAM", "TRASH"} & set(x["labelIds"])))
                and self._matches(box, x, terms)]
        pos = {"o": 0, "e": 0}
        if req.q("pageToken"):
            pos = _untoken(req.q("pageToken"))
            if pos is None or "o" not in pos:
                return google_error(400, "Invalid pageToken", "invalidArgument")
        if pos.get("e", 0) < self.empty_pages:
            return Response.json(200, {"nextPageToken": _token({"o": pos["o"], "e": pos.get("e", 0) + 1}),
                                       "resultSizeEstimate": 0})
        page = hits[pos["o"]:pos["o"] + limit]
        out = {"resultSizeEstimate": len(hits)}
        if page:
            out["messages"] = [{"id": x["id"], "threadId": x["threadId"]} for x in page]
        if pos["o"] + limit < len(hits):
            out["nextPageToken"] = _token({"o": pos["o"] + limit, "e": pos.get("e", 0)})
        return Response.json(200, out)

    def get_message(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        msg = box["messages"].get(urllib.parse.unquote(m["id"]))
        if msg is None:
            return google_error(404, NOT_FOUND, "notFound")
        fmt = req.q("format", "full")
        if fmt not in ("raw", "minimal", "full", "metadata"):
            return google_error(400, f"Invalid value at 'format' ({fmt})", "invalidArgument")
        out = {"id": msg["id"], "threadId": msg["threadId"], "labelIds": list(msg["labelIds"]),
               "sizeEstimate": len(msg["raw"]), "historyId": str(msg["historyId"]),
               "internalDate": str(msg["internalDate"])}
        if fmt != "minimal":
            out["snippet"] = msg["snippet"]
        if fmt == "raw":
            out["raw"] = base64.urlsafe_b64encode(msg["raw"]).decode("ascii")
        elif fmt in ("full", "metadata"):
            headers = email.parser.BytesHeaderParser().parsebytes(msg["raw"])
            out["payload"] = {"mimeType": headers.get_content_type(),
                              "headers": [{"name": k, "value": str(v)} for k, v in headers.items()]}
        return Response.json(200, out)

    def modify(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        body, err = self._body(req)
        if err:
            return err
        msg = box["messages"].get(urllib.parse.unquote(m["id"]))
        if msg is None:
            return google_error(404, NOT_FOUND, "notFound")
        add, remove = body.get("addLabelIds") or [], body.get("removeLabelIds") or []
        if not isinstance(add, list) or not isinstance(remove, list):
            return google_error(400, "Invalid label list", "invalidArgument")
        if len(add) > 100 or len(remove) > 100:
            return google_error(400, "Too many labels (at most 100 each)", "invalidArgument")
        for lid in add + remove:
            if not isinstance(lid, str) or lid not in box["labels"]:
                return google_error(400, f"Invalid label: {lid}", "invalidArgument")
        self._relabel(box, msg, add, remove)
        return Response.json(200, {"id": msg["id"], "threadId": msg["threadId"], "labelIds": list(msg["labelIds"])})

    def _relabel(self, box, msg, add, remove):
        # One labelAdded and one labelRemoved history record at most, as Gmail writes them,
        # and a notification when anything changed (app.lock held).
        before = set(msg["labelIds"])
        added = [x for x in dict.fromkeys(add) if x not in msg["labelIds"]]
        msg["labelIds"] += added
        if added:
            self._record(box, "labelAdded", msg, added)
        removed = [x for x in dict.fromkeys(remove) if x in msg["labelIds"] and x not in add]
        msg["labelIds"] = [x for x in msg["labelIds"] if x not in removed]
        if removed:
            self._record(box, "labelRemoved", msg, removed)
        if added or removed:
            self._notify(box, before | set(msg["labelIds"]))

    @staticmethod
    def _label_json(label):
        out = {"id": label["id"], "name": label["name"], "type": label["type"]}
        if label["type"] == "user":
            out["messageListVisibility"] = label.get("messageListVisibility", "show")
            out["labelListVisibility"] = label.get("labelListVisibility", "labelShow")
        return out

    def list_labels(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        return Response.json(200, {"labels": [self._label_json(x) for x in box["labels"].values()]})

    def create_label(self, req, m):
        box, err = self._mailbox(req, m)
        if err:
            return err
        body, err = self._body(req)
        if err:
            return err
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return google_error(400, "Invalid label name", "invalidArgument")
        if any(x["name"].lower() == name.lower() for x in box["labels"].values()):
            return google_error(409, "Label name exists or conflicts", "duplicate", "ALREADY_EXISTS")
        box["label_counter"] += 1
        lid = f"Label_{box['label_counter']}"
        box["labels"][lid] = {"id": lid, "name": name, "type": "user",
                              "messageListVisibility": body.get("messageListVisibility", "show"),
                              "labelListVisibility": body.get("labelListVisibility", "labelShow")}
        return Response.json(200, self._label_json(box["labels"][lid]))

    # --- control ---
    def _ctl_deliver(self, req, m):
        try:
            body = req.json()
            user = body.get("user") or self.default_user
            raw = base64.b64decode(body["raw_b64"]) if "raw_b64" in body else body["raw"].encode("utf-8")
            labels = body.get("labelIds", ["INBOX", "UNREAD"])
            assert isinstance(labels, list)
        except Exception:
            return Response.json(400, {"error": 'body must be {"user", "raw": "<text>" | "raw_b64": "..", "labelIds"?}'})
        with self.app.lock:
            box = self._box(user)
            for lid in labels:
                if lid not in box["labels"]:
                    return Response.json(400, {"error": f"unknown label id {lid}"})
            self.message_counter += 1
            mid = f"{0x18c0000000000000 + self.message_counter * 0x1000 + secrets.randbelow(0x1000):016x}"
            box["seq"] += 1
            snippet = email.parser.BytesParser().parsebytes(raw).get_payload()
            snippet = snippet if isinstance(snippet, str) else ""
            msg = {"id": mid, "threadId": body.get("threadId") or mid, "raw": raw, "labelIds": list(labels),
                   "internalDate": int(body.get("internalDate") or _now_ms()), "historyId": 0, "seq": box["seq"],
                   "snippet": " ".join(snippet.split())[:100]}
            box["messages"][mid] = msg
            hid = self._record(box, "messageAdded", msg)
            self._notify(box, set(labels))
            return Response.json(200, {"id": mid, "threadId": msg["threadId"], "historyId": hid})

    def _ctl_relabel(self, req, m):
        try:
            body = req.json()
            user, mid = body.get("user") or self.default_user, body["id"]
            add, remove = list(body.get("add") or []), list(body.get("remove") or [])
        except Exception:
            return Response.json(400, {"error": 'body must be {"user", "id", "add", "remove"}'})
        with self.app.lock:
            box = self._box(user)
            msg = box["messages"].get(mid)
            if msg is None:
                return Response.json(404, {"error": f"no message {mid}"})
            self._relabel(box, msg, add, remove)
            return Response.json(200, {"id": mid, "labelIds": list(msg["labelIds"])})

    def _ctl_delete(self, req, m):
        try:
            body = req.json()
            user, mid = body.get("user") or self.default_user, body["id"]
        except Exception:
            return Response.json(400, {"error": 'body must be {"user", "id"}'})
        with self.app.lock:
            box = self._box(user)
            msg = box["messages"].pop(mid, None)
            if msg is None:
                return Response.json(404, {"error": f"no message {mid}"})
            hid = self._record(box, "messageDeleted", msg)
            self._notify(box, set(msg["labelIds"]))
            return Response.json(200, {"id": mid, "historyId": hid})

    def _ctl_retention(self, req, m):
        try:
            body = req.json()
            floor = int(body["floor_history_id"])
        except Exception:
            return Response.json(400, {"error": 'body must be {"floor_history_id": N, "user"?}'})
        with self.app.lock:
            boxes = [self._box(body["user"])] if body.get("user") else list(self.boxes.values())
            for box in boxes:
                box["floor"] = floor
            return Response.json(200, {"floor_history_id": floor, "mailboxes": [b["user"] for b in boxes]})

    def _ctl_watch_expiration(self, req, m):
        try:
            body = req.json()
            ms = body.get("ms")
            lifetime = body.get("lifetime_ms")
            assert ms is not None or lifetime is not None
        except Exception:
            return Response.json(400, {"error": 'body must be {"ms": N} and/or {"lifetime_ms": M}'})
        with self.app.lock:
            if lifetime is not None:
                self.watch_lifetime_ms = int(lifetime)
            out = {}
            for box in self.boxes.values():
                if box["watch"] is not None:
                    if ms is not None:
                        box["watch"]["expiration"] = _now_ms() + int(ms)
                    out[box["user"]] = box["watch"]["expiration"]
            return Response.json(200, {"watches": out, "lifetime_ms": self.watch_lifetime_ms})

    def _ctl_notifications(self, req, m):
        body = req.json() if req.body.strip() else {}
        with self.app.lock:
            self.drop_notifications = bool(body.get("drop"))
            return Response.json(200, {"drop": self.drop_notifications})

    def _ctl_paging(self, req, m):
        try:
            n = int(req.json()["empty_pages"])
            assert n >= 0
        except Exception:
            return Response.json(400, {"error": 'body must be {"empty_pages": N}'})
        with self.app.lock:
            self.empty_pages = n
        return Response.json(200, {"empty_pages": n})

    def _ctl_default_user(self, req, m):
        try:
            user = req.json()["user"]
            assert isinstance(user, str) and "@" in user
        except Exception:
            return Response.json(400, {"error": 'body must be {"user": "name@domain"}'})
        with self.app.lock:
            self.default_user = user.lower()
        return Response.json(200, {"user": self.default_user})

    def _ctl_messages(self, req, m):
        want = (req.q("user") or "").lower()
        with self.app.lock:
            out = []
            for box in self.boxes.values():
                if want and box["user"] != want:
                    continue
                for x in box["messages"].values():
                    out.append({"user": box["user"], "id": x["id"], "threadId": x["threadId"],
                                "labelIds": list(x["labelIds"]),
                                "labels": [box["labels"][lid]["name"] for lid in x["labelIds"]],
                                "historyId": x["historyId"], "internalDate": x["internalDate"]})
            return Response.json(200, {"messages": out})

    def _ctl_mailbox(self, req, m):
        with self.app.lock:
            box = self._box(req.q("user") or self.default_user)
            return Response.json(200, {"user": box["user"], "historyId": box["history_id"], "floor": box["floor"],
                                       "watch": box["watch"],
                                       "labels": [self._label_json(x) for x in box["labels"].values()]})
