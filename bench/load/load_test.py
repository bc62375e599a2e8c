#!/usr/bin/env python3
"""Load test of the claims pipeline split over Redis Streams (issue 17, "Load test").

    python3 bench/load/load_test.py [--emails 500] [--phases steady,kill | --kill | --no-kill]
                                    [--out build/load] [--docpipe build/bin/docpipe] ...

Per phase, on this machine: a real redis-server (loopback, free port, no persistence), the fake
NCB (tests/fakes/fake_ncb.py) and four `docpipe run` processes built from the shipped
pipelines/distributed/*.yaml (intake, two OCR workers, delivery; state on that Redis), then
N claim emails made from ../shared/data/sroie-* are dropped into the intake's maildir at once.
It samples the streams, Redis memory and the outcomes every second, and at the end checks that
every claim ended in exactly one place (the fake NCB or the review queue). Phase `kill`
SIGKILLs one OCR worker when half the claims are settled and starts it again a few seconds
later. Writes report.json, summary.md and queue-depth-<phase>.svg to --out; exits 1 when a
claim was lost or duplicated (or a phase could not finish), 2 on a set-up error.
See bench/load/README.md.
"""

import argparse
import datetime
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import claim_emails  # noqa: E402
import svgplot  # noqa: E402
from resp import Redis, RedisError  # noqa: E402

try:
    import yaml
except ImportError:
    sys.exit("load: python3-yaml is needed (Debian: apt-get install python3-yaml)")

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PREFIX = "docpipe:claims"  # STREAM_PREFIX, the shipped default
STREAMS = {"ocr": (f"{PREFIX}:ocr", "ocr"), "delivery": (f"{PREFIX}:delivery", "delivery")}
PROCS = ["intake", "ocr-1", "ocr-2", "delivery"]
REDIS_TIMEOUT = 30.0  # seconds; Redis starved of CPU on a loaded 2-core box has taken 29 s to answer


class SetupError(Exception):
    pass


class PhaseFailed(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_json(url, headers=None, timeout=10):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def parse_duration(text):
    text = str(text).strip()
    for suffix, mult in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * mult
    return float(text)


class Progress:
    """One updating line on a terminal; nothing otherwise."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.last = 0

    def show(self, text):
        if self.tty:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            sys.stderr.write("\r" + text[:width].ljust(self.last)[:width])
            sys.stderr.flush()
            self.last = min(len(text), width)

    def done(self):
        if self.tty and self.last:
            sys.stderr.write("\n")
            self.last = 0


def note(text):
    """A line that is always printed (phase start/end, problems)."""
    PROGRESS.done()
    print(f"load: {text}", flush=True)


PROGRESS = Progress()


# ---- the stack: redis, fake NCB, four docpipe processes ------------------------------------

class Stack:
    def __init__(self, args, work, phase):
        self.args, self.work, self.phase = args, work, phase
        self.procs = {}       # name -> Popen (docpipe)
        self.logs = {}        # name -> log path
        self.admin = {}       # name -> admin port
        self.redis_proc = self.fake = None
        self.creds = os.path.join(work, "credentials")
        self.maildir = os.path.join(work, "maildir")
        self.staging = os.path.join(work, "staging")
        os.makedirs(self.creds)
        for d in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(self.maildir, d))
        os.makedirs(self.staging)
        os.makedirs(os.path.join(work, "logs"))
        self.admin_key = secrets.token_hex(16)
        self.ncb_key = secrets.token_hex(16)
        for name, value in (("admin-key", self.admin_key), ("ncb-api-key", self.ncb_key)):
            path = os.path.join(self.creds, name)
            with open(path, "w") as f:
                f.write(value + "\n")
            os.chmod(path, 0o600)

    # -- redis
    def start_redis(self):
        self.redis_port = free_port()
        log = os.path.join(self.work, "logs", "redis-server.log")
        self.logs["redis"] = log
        self.redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.work, "--logfile", log],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                r = Redis(self.redis_port, timeout=REDIS_TIMEOUT)
                if r("PING") == "PONG":
                    self.redis = r
                    return
            except (OSError, RedisError):
                time.sleep(0.05)
        raise SetupError("redis-server did not answer PING within 20 s:\n" + tail(log))

    # -- fake NCB
    def start_fake(self):
        log = os.path.join(self.work, "logs", "fake-ncb.log")
        self.logs["fake-ncb"] = log
        env = dict(os.environ, DOCPIPE_FAKE_PARENT_PID=str(os.getpid()))
        self.fake_log = open(log, "wb")
        # stdout stays a pipe we keep open (never read past the first line): the fake writes
        # nothing more, and a closed pipe could give it SIGPIPE.
        self.fake = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fakes", "fake_ncb.py"),
                                      "--port", "0", "--api-key", self.ncb_key],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.fake_log, env=env)
        ready, _, _ = select.select([self.fake.stdout], [], [], 20)
        line = self.fake.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("LISTENING "):
            raise SetupError(f"the fake NCB did not start (first line {line!r}):\n" + tail(log))
        self.ncb_url = f"http://127.0.0.1:{line.split()[1]}"

    # -- pipelines
    def write_pipelines(self):
        dist = os.path.join(ROOT, "pipelines", "distributed")
        with open(os.path.join(dist, "intake.yaml")) as f:
            intake = yaml.safe_load(f)
        with open(os.path.join(dist, "ocr-worker.yaml")) as f:
            ocr = yaml.safe_load(f)
        with open(os.path.join(dist, "delivery.yaml")) as f:
            delivery = yaml.safe_load(f)
        # Intake: Gmail -> a local maildir; no Drive archive (no Google here).
        intake["nodes"]["inbox"] = {"component": "source.maildir",
                                    "config": {"path": self.maildir, "poll_interval": "200ms"}}
        intake["nodes"].pop("archive")
        intake["edges"] = [e for e in intake["edges"] if "archive" not in e]
        # Delivery: no Sheets audit (no Google here); NCB's base_url comes from NCB_API_BASE_URL.
        delivery["nodes"].pop("audit")
        delivery["edges"] = [e for e in delivery["edges"] if "audit" not in e]
        # The OCR worker runs as shipped: everything a local run needs is an environment variable.
        self.yaml = {}
        for name, doc in (("intake", intake), ("ocr", ocr), ("delivery", delivery)):
            path = os.path.join(self.work, f"{name}.yaml")
            with open(path, "w") as f:
                f.write(f"# Made by bench/load/load_test.py from pipelines/distributed/{name if name != 'ocr' else 'ocr-worker'}.yaml\n")
                yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True)
            self.yaml[name] = path
        env = self.env("delivery")
        for name, path in self.yaml.items():
            r = subprocess.run([self.args.docpipe, "validate", path], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SetupError(f"{path} does not validate:\n{r.stdout}{r.stderr}")

    def env(self, name):
        env = dict(os.environ)
        env.update({
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "STREAM_PREFIX": PREFIX,
            "CREDENTIALS_DIRECTORY": self.creds,
            "NCB_API_BASE_URL": f"{self.ncb_url}/api/v1",
            "CLAIM_IDLE": self.args.claim_idle,
            "OMP_THREAD_LIMIT": "1",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "text",
        })
        if self.args.ocr_device:
            env["OCR_DEVICE"] = self.args.ocr_device
        env.pop("WORKER_NAME", None)  # consumer = <hostname>-<pid>: a restarted worker is a new consumer
        if name in self.admin:
            env["ADMIN_LISTEN"] = f"127.0.0.1:{self.admin[name]}"
        return env

    def start_proc(self, name):
        if name not in self.admin:
            self.admin[name] = free_port()
        cfg = self.yaml["ocr" if name.startswith("ocr") else name]
        log = os.path.join(self.work, "logs", f"{name}.log")
        self.logs[name] = log
        with open(log, "ab") as f:
            self.procs[name] = subprocess.Popen([self.args.docpipe, "run", "-c", cfg], env=self.env(name),
                                                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)

    def wait_ready(self, names, timeout=120):
        deadline = time.time() + timeout
        pending = list(names)
        while pending and time.time() < deadline:
            for name in list(pending):
                p = self.procs[name]
                if p.poll() is not None:
                    raise SetupError(f"docpipe {name} exited {p.returncode} while starting:\n" + tail(self.logs[name], 30))
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.admin[name]}/health/ready", timeout=2) as r:
                        if r.status == 200:
                            pending.remove(name)
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.2)
        if pending:
            raise SetupError(f"not ready after {timeout} s: {', '.join(pending)}\n" +
                             "\n".join(f"--- {n}\n{tail(self.logs[n])}" for n in pending))

    def start(self):
        self.start_redis()
        self.start_fake()
        self.write_pipelines()
        for name in PROCS:
            self.start_proc(name)
        self.wait_ready(PROCS)

    def stop(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        for name, p in self.procs.items():
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for p in (self.fake, self.redis_proc):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.fake is not None:
            self.fake.stdout.close()
            self.fake_log.close()

    def kill_all(self):
        """Last resort (an exception or a signal): SIGKILL what this phase started, by pid."""
        for p in list(self.procs.values()) + [self.fake, self.redis_proc]:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


# ---- observing the run ---------------------------------------------------------------------

class Observer:
    """Reads where each claim is: the fake NCB's bookings, review records and dead letters in
    the Redis state store, stream groups, Redis memory. Each review record / dead letter is
    fetched once (they carry the whole document)."""

    def __init__(self, stack, plans):
        self.stack = stack
        self.r = stack.redis
        self.expected = {}    # (message_id, filename) -> email index
        for p in plans:
            for a in p["attachments"]:
                self.expected[(p["message_id"], a["filename"])] = p["index"]
        self.review = {}      # key -> {message_id, filename, member_id, seen}
        self.dead = {}        # key -> {message_id, filename, node, reason, seen}
        self.ncb = {"claims": [], "attempts": 0, "replayed": 0, "key_reused": 0}

    def reconnect(self):
        """After a timeout the connection is out of step with its replies: start a new one."""
        self.r.close()
        self.r = self.stack.redis = Redis(self.stack.redis_port, timeout=REDIS_TIMEOUT)

    def retrying(self, fn, *args, tries=6):
        """fn(*args), again after a reconnect when Redis or the fake did not answer in time (a
        2-core machine under heavy load can starve Redis of CPU for tens of seconds)."""
        for i in range(tries):
            try:
                return fn(*args)
            except (OSError, RedisError, ValueError):
                if i == tries - 1:
                    raise
                time.sleep(2.0 * (i + 1))
                try:
                    self.reconnect()
                except OSError:
                    pass

    def _fetch_doc(self, key):
        raw = self.r("GET", key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return {}

    def _unseen(self, pattern, seen):
        """(key, record) for each key matching `pattern` not yet in `seen` whose record is there."""
        for key in self.r.scan(pattern):
            if key in seen:
                continue
            rec = self._fetch_doc(key)
            if rec is not None:
                yield key, rec

    def poll(self, now):
        self.ncb = http_json(f"{self.stack.ncb_url}/_fake/claims", timeout=30)
        for key, rec in self._unseen("docpipe:kv:review/*", self.review):
            doc = rec.get("document", {})
            attrs = doc.get("attributes", {})
            claim = doc.get("fields", {}).get("claim", {})
            member = claim.get("member_id", {}).get("value") if isinstance(claim.get("member_id"), dict) else None
            self.review[key] = {"message_id": attrs.get("message_id"), "filename": attrs.get("filename"),
                                "member_id": member, "doc_id": doc.get("id"), "reason": rec.get("reason"), "seen": now}
        for key, rec in self._unseen("docpipe:kv:deadletter/*", self.dead):
            doc = rec.get("document") or rec.get("doc") or {}
            attrs = doc.get("attributes", {}) if isinstance(doc, dict) else {}
            self.dead[key] = {"message_id": attrs.get("message_id"), "filename": attrs.get("filename"),
                              "doc_id": rec.get("doc_id") or (doc.get("id") if isinstance(doc, dict) else None),
                              "node": key.rsplit("-", 1)[-1], "reason": str(rec.get("reason", ""))[:300], "seen": now}

    def streams(self):
        out = {}
        for stage, (key, group) in STREAMS.items():
            s = {"length": 0, "pending": 0, "lag": 0, "consumers": 0}
            try:
                s["length"] = self.r("XLEN", key)
                for g in self.r("XINFO", "GROUPS", key):
                    g = self.r.pairs(g)
                    if g.get("name") == group:
                        s["pending"] = g.get("pending") or 0
                        lag = g.get("lag")
                        s["lag"] = int(lag) if lag is not None else 0
                        s["consumers"] = g.get("consumers") or 0
            except RedisError:
                pass  # the stream or group does not exist yet
            out[stage] = s
        return out

    def consumers(self, stage):
        key, group = STREAMS[stage]
        try:
            return [self.r.pairs(c) for c in self.r("XINFO", "CONSUMERS", key, group)]
        except RedisError:
            return []

    def memory(self):
        m = self.r.info("memory")
        return int(m["used_memory"]), int(m["used_memory_peak"])

    def outcomes(self):
        """(message_id, filename) -> {"ncb": [claims], "review": [records], "dead": [letters]}"""
        out = {k: {"ncb": [], "review": [], "dead": []} for k in self.expected}
        stray = {"ncb": [], "review": [], "dead": []}
        for c in self.ncb["claims"]:
            rec = c.get("record", {})
            k = (rec.get("source_email_id"), rec.get("source_filename"))
            (out[k]["ncb"] if k in out else stray["ncb"]).append(c)
        for r in self.review.values():
            k = (r["message_id"], r["filename"])
            (out[k]["review"] if k in out else stray["review"]).append(r)
        # A dead letter of an entry that could not be decoded carries no document, only its id:
        # found through the NCB booking (X-Request-ID = document id) or review record of that id.
        by_doc = {c.get("request_id"): (c["record"].get("source_email_id"), c["record"].get("source_filename"))
                  for c in self.ncb["claims"] if c.get("record")}
        by_doc.update({r["doc_id"]: (r["message_id"], r["filename"]) for r in self.review.values()})
        for d in self.dead.values():
            k = (d["message_id"], d["filename"])
            if k not in out:
                k = by_doc.get(d.get("doc_id"), k)
            (out[k]["dead"] if k in out else stray["dead"]).append(d)
        return out, stray


# ---- one phase ----------------------------------------------------------------------------

def run_phase(args, phase, phase_no, run_tag, images, out_dir):
    work = tempfile.mkdtemp(prefix=f"docpipe-load-{phase}-")
    stack = Stack(args, work, phase)
    result = {"phase": phase, "emails": args.emails}
    try:
        note(f"phase {phase}: starting redis-server, the fake NCB and 4 docpipe processes (work dir {work})")
        stack.start()
        plans = claim_emails.plan(args.emails, images, run_tag, phase_no, seed=args.seed, two_every=args.two_every)
        t_gen = time.time()
        when = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8)))
        for p in plans:
            claim_emails.write(p, os.path.join(stack.staging, p["name"]), when)
        n_claims = sum(len(p["attachments"]) for p in plans)
        gen_s = time.time() - t_gen
        note(f"phase {phase}: {len(plans)} emails, {n_claims} receipts from {len(set(a['image'] for p in plans for a in p['attachments']))} "
             f"scans written in {gen_s:.1f} s; dropping them all at once")
        result.update(monitor(args, stack, phase, plans, n_claims))
    except (SetupError, PhaseFailed, OSError, RedisError, ValueError) as e:
        result["error"] = str(e) if isinstance(e, (SetupError, PhaseFailed)) else f"{type(e).__name__}: {e}"
        note(f"phase {phase}: FAILED: {result['error']}")
        for name in PROCS + ["fake-ncb", "redis"]:
            if name in stack.logs:
                print(f"--- {name} ({stack.logs[name]}), last lines:\n{tail(stack.logs[name])}", flush=True)
    finally:
        PROGRESS.done()
        try:
            stack.stop()
        except Exception:  # noqa: BLE001 - never leave processes behind
            stack.kill_all()
            raise
        logs_out = os.path.join(out_dir, "logs", phase)
        os.makedirs(logs_out, exist_ok=True)
        for name, path in stack.logs.items():
            if os.path.exists(path):
                shutil.copyfile(path, os.path.join(logs_out, os.path.basename(path)))
        for name in ("intake.yaml", "ocr.yaml", "delivery.yaml"):
            if os.path.exists(os.path.join(work, name)):
                shutil.copyfile(os.path.join(work, name), os.path.join(logs_out, name))
        if args.keep:
            note(f"phase {phase}: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def monitor(args, stack, phase, plans, n_claims):
    obs = Observer(stack, plans)
    kill = phase == "kill"
    new_dir = os.path.join(stack.maildir, "new")
    # Drop: every email renamed into new/ (atomic, same file system), its drop time kept.
    drop_time = {}
    for p in plans:
        os.rename(os.path.join(stack.staging, p["name"]), os.path.join(new_dir, p["name"]))
        drop_time[p["message_id"]] = time.time()
    t0 = min(drop_time.values())
    t_dropped = max(drop_time.values())
    samples, events = [], {}
    last_progress, last_settled = time.time(), -1
    quiet_since = None
    kill_info = None
    deadline = t0 + args.timeout
    peak_mem = 0
    email_claims = {p["message_id"]: len(p["attachments"]) for p in plans}
    while True:
        time.sleep(max(0.0, args.sample - (time.time() - (samples[-1]["at"] + t0 if samples else t0))))
        now = time.time()
        try:
            obs.poll(now)
            st = obs.streams()
            used, peak = obs.memory()
        except (OSError, urllib.error.URLError, RedisError, ValueError) as e:
            try:
                obs.reconnect()
            except OSError:
                pass
            # A slow answer from the fake or Redis on a busy machine: skip this sample. The
            # stall timeout still ends a phase where nothing answers any more.
            if now - last_progress > args.stall:
                raise PhaseFailed(f"the fake NCB or Redis stopped answering: {e}") from e
            time.sleep(1.0)
            continue
        peak_mem = max(peak_mem, peak)
        outcomes, stray = obs.outcomes()
        settled_claims = sum(1 for o in outcomes.values() if o["ncb"] or o["review"] or o["dead"])
        per_email = {}
        for (mid, _), o in outcomes.items():
            per_email[mid] = per_email.get(mid, 0) + (1 if (o["ncb"] or o["review"] or o["dead"]) else 0)
        settled_emails = sum(1 for mid, n in per_email.items() if n == email_claims[mid])
        try:
            accepted = len(os.listdir(os.path.join(stack.maildir, "cur")))
            waiting = len(os.listdir(new_dir))
        except OSError:
            accepted = waiting = 0
        s = {"at": round(now - t0, 3), "dropped": len(plans), "accepted": accepted, "settled_emails": settled_emails,
             "in_flight": len(plans) - settled_emails, "in_pipeline": accepted - settled_emails,
             "ncb": sum(1 for o in outcomes.values() if o["ncb"]), "review": sum(1 for o in outcomes.values() if o["review"]),
             "dead": sum(1 for o in outcomes.values() if o["dead"]), "settled_claims": settled_claims,
             "used_memory": used, "streams": st}
        samples.append(s)
        # Processes: none may die by itself.
        for name, p in stack.procs.items():
            if p.poll() is not None and not (kill_info and name == kill_info["worker"] and "restarted_at" not in kill_info):
                raise PhaseFailed(f"docpipe {name} exited {p.returncode} by itself at t={s['at']:.0f} s")
        # The kill: one OCR worker, SIGKILL, when half the claims are settled; back after --restart-after.
        if kill and kill_info is None and settled_claims >= n_claims * args.kill_at:
            kill_info = kill_worker(args, stack, obs, t0)
        if kill_info and "restarted_at" not in kill_info and now - t0 >= kill_info["killed_at"] + args.restart_after:
            stack.start_proc(kill_info["worker"])
            kill_info["restarted_at"] = round(time.time() - t0, 3)
            kill_info["restarted_pid"] = stack.procs[kill_info["worker"]].pid
        rate = s["ncb"] + s["review"]
        elapsed = now - t0
        PROGRESS.show(f"{phase}: {elapsed:5.0f}s  NCB {s['ncb']}  review {s['review']}  dead {s['dead']}  of {n_claims} receipts | "
                      f"emails in flight {s['in_flight']} | ocr lag {st['ocr']['lag']} pending {st['ocr']['pending']} | "
                      f"delivery lag {st['delivery']['lag']} pending {st['delivery']['pending']} | "
                      f"{rate / max(elapsed, 1e-9) * 60:.0f}/min | redis {used / 2**20:.0f} MiB"
                      + (" | worker killed" if kill_info and "restarted_at" not in kill_info else ""))
        if settled_claims != last_settled:
            last_settled, last_progress = settled_claims, now
        quiescent = (waiting == 0 and accepted == len(plans) and
                     all(v["lag"] == 0 and v["pending"] == 0 for v in st.values()) and
                     (not kill or (kill_info and "restarted_at" in kill_info)))
        if quiescent and settled_claims >= n_claims:
            break
        # Everything drained but some claims never showed up: give stragglers a moment, then stop.
        quiet_since = (quiet_since or now) if quiescent else None
        if quiet_since and now - quiet_since > args.settle_grace:
            break
        if now > deadline or now - last_progress > args.stall:
            why = "timed out" if now > deadline else f"no claim settled for {args.stall:.0f} s"
            raise PhaseFailed(f"{why} ({settled_claims} of {n_claims} receipts settled): {stuck_stage(s, st, len(plans))}")
    # Wait one more sample interval: anything still arriving would be a duplicate.
    time.sleep(max(args.sample, 1.0))
    obs.retrying(lambda: obs.poll(time.time()))
    outcomes, stray = obs.outcomes()
    return analyse(args, stack, obs, plans, outcomes, stray, drop_time, t0, t_dropped, samples, kill_info, peak_mem)


def stuck_stage(s, st, n):
    if s["accepted"] < n:
        return f"the intake: {n - s['accepted']} emails still in the maildir's new/"
    if st["ocr"]["lag"] or st["ocr"]["pending"]:
        return (f"the OCR workers: stream {STREAMS['ocr'][0]} has {st['ocr']['lag']} unread and "
                f"{st['ocr']['pending']} pending entries")
    if st["delivery"]["lag"] or st["delivery"]["pending"]:
        return (f"delivery: stream {STREAMS['delivery'][0]} has {st['delivery']['lag']} unread and "
                f"{st['delivery']['pending']} pending entries (NCB held? see delivery.log)")
    return "every stream is drained, yet claims are missing (lost?)"


def kill_worker(args, stack, obs, t0):
    consumers = obs.retrying(obs.consumers, "ocr")

    def consumer_of(name):
        pid = stack.procs[name].pid
        return next((c for c in consumers if str(c.get("name", "")).endswith(f"-{pid}")), {})
    # The worker holding the most entries (read from the stream, not acked): killing an idle
    # one would test nothing.
    name = args.kill_worker if args.kill_worker != "busiest" else \
        max(("ocr-1", "ocr-2"), key=lambda n: consumer_of(n).get("pending", 0) or 0)
    p = stack.procs[name]
    consumer = consumer_of(name)
    before = obs.retrying(obs.streams)
    p.send_signal(signal.SIGKILL)
    p.wait()
    info = {"worker": name, "pid": p.pid, "killed_at": round(time.time() - t0, 3),
            "consumer": consumer.get("name"), "pending_on_killed_consumer": consumer.get("pending", 0),
            "streams_at_kill": before}
    note(f"killed {name} (pid {p.pid}, consumer {consumer.get('name')}) with SIGKILL at t={info['killed_at']:.0f} s "
         f"with {info['pending_on_killed_consumer']} entries pending on it; restarting in {args.restart_after:.0f} s")
    return info


def analyse(args, stack, obs, plans, outcomes, stray, drop_time, t0, t_dropped, samples, kill_info, peak_mem):
    n_claims = len(outcomes)
    lost, duplicated, dead, both = [], [], [], []
    ncb_lat, review_lat, settle_t = [], [], {}
    member_ok = member_bad = 0
    member_of = {p["message_id"]: p["member_id"] for p in plans}
    bad_input, spurious = [], []
    for (mid, fn), o in outcomes.items():
        delivered = len(o["ncb"]) + len(o["review"])
        if delivered:
            # Delivered, and a dead letter too: another worker also had the entry and gave up
            # on it (e.g. its blob was already released by the worker that finished it). Not a
            # claim; reported apart.
            spurious += [f"{mid} {fn}: {d['reason']}" for d in o["dead"]]
        elif o["dead"]:
            # Not delivered: a receipt refused as bad input (some SROIE scans are corrupt
            # JPEGs) has its one place in the dead letters, with the reason; any other dead
            # letter means the pipeline gave up on it.
            rejected = [d for d in o["dead"] if is_bad_input(d["reason"])]
            if rejected:
                bad_input.append(f"{mid} {fn}: {rejected[0]['reason']}")
            else:
                dead.append(f"{mid} {fn}: {o['dead'][0]['reason']}")
        else:
            lost.append(f"{mid} {fn}")
        if delivered > 1:
            duplicated.append(f"{mid} {fn}: NCB {len(o['ncb'])}, review {len(o['review'])}")
        if o["ncb"] and o["review"]:
            both.append(f"{mid} {fn}")
        times = []
        for c in o["ncb"]:
            ncb_lat.append(c["received_ms"] / 1000.0 - drop_time[mid])
            times.append(c["received_ms"] / 1000.0)
            member_ok += c["record"].get("Policy Number") == member_of[mid]
            member_bad += c["record"].get("Policy Number") != member_of[mid]
        for r in o["review"]:
            review_lat.append(r["seen"] - drop_time[mid])
            times.append(r["seen"])
        if not times:
            times = [d["seen"] for d in o["dead"]]
        if times:
            settle_t.setdefault(mid, []).append(min(times))
    # Emails in flight over time, from the events: +1 at each drop, -1 when its last claim settled.
    email_claims = {p["message_id"]: len(p["attachments"]) for p in plans}
    ev = [(t, +1) for t in drop_time.values()]
    for mid, ts in settle_t.items():
        if len(ts) == email_claims[mid]:
            ev.append((max(ts), -1))
    ev.sort(key=lambda e: (e[0], -e[1]))
    level = max_in_flight = 0
    for _, d in ev:
        level += d
        max_in_flight = max(max_in_flight, level)
    last = max((t for ts in settle_t.values() for t in ts), default=time.time())
    span = max(1e-9, last - t0)
    settled = sum(1 for o in outcomes.values() if o["ncb"] or o["review"])
    replays = obs.ncb.get("replayed", 0)
    replayed_keys = sum(1 for c in obs.ncb["claims"] if c.get("replays"))
    try:
        exc = http_json(f"http://127.0.0.1:{stack.admin['delivery']}/api/v1/exceptions?limit=1",
                        headers={"X-API-Key": stack.admin_key})
        admin_review = exc.get("meta", {}).get("pagination", {}).get("total")
    except (urllib.error.URLError, OSError, ValueError) as e:
        admin_review = f"unavailable: {e}"
    # Diagnostic: the job record (docpipe:job:<document id>) of each settled claim. Job ids are
    # document ids and every stage keeps its jobs in the one Redis, so the OCR worker's job for an
    # attachment and the delivery's job for the same claim are one record.
    job_status = {"ncb": {}, "review": {}}
    for what, ids in (("ncb", [c.get("request_id") for c in obs.ncb["claims"]]),
                      ("review", [r.get("doc_id") for r in obs.review.values()])):
        for doc_id in ids:
            # The delivery stage's own job (`<doc id>@<its source node>`, since the receipt keeps
            # its id across the stream); before that split, the one record both stages wrote.
            raw = None
            for job_id in ((f"{doc_id}@from_ocr", doc_id) if doc_id else ()):
                raw = obs.retrying(lambda: obs.r("GET", f"docpipe:job:{job_id}"))
                if raw:
                    break
            st = json.loads(raw).get("status", "?") if raw else "no job record"
            job_status[what][st] = job_status[what].get(st, 0) + 1
    autoclaims = autoclaimed(stack, t0, kill_info)
    consumers_end = obs.retrying(obs.consumers, "ocr")
    used_end, peak_end = obs.retrying(obs.memory)
    res = {
        "receipts": n_claims,
        "counts": {
            "ncb_distinct_claims": len(obs.ncb["claims"]),
            "ncb_claims_matched": sum(len(o["ncb"]) for o in outcomes.values()),
            "review_items": len(obs.review),
            "review_matched": sum(len(o["review"]) for o in outcomes.values()),
            "dead_letters": len(obs.dead),
            "settled_exactly_once": sum(1 for o in outcomes.values()
                                        if len(o["ncb"]) + len(o["review"]) == 1
                                        or (not o["ncb"] and not o["review"] and o["dead"]
                                            and all(is_bad_input(d["reason"]) for d in o["dead"]))),
            "refused_bad_input": len(bad_input),
            "spurious_dead_letters": len(spurious),
            "lost": len(lost), "duplicated": len(duplicated), "ncb_and_review": len(both), "dead_lettered": len(dead),
            "stray_ncb": len(stray["ncb"]), "stray_review": len(stray["review"]), "stray_dead": len(stray["dead"]),
            "ncb_post_attempts": obs.ncb.get("attempts"),
            "ncb_idempotent_replays": replays, "ncb_claims_with_replayed_key": replayed_keys,
            "ncb_key_reused_422": obs.ncb.get("key_reused", 0),
            "ncb_policy_number_is_member_id": member_ok, "ncb_policy_number_other": member_bad,
            "admin_api_review_jobs": admin_review,
        },
        "review_reasons": reasons(obs.review.values()),
        "job_status_of_settled_claims": job_status,
        "lost": lost[:50], "duplicated": duplicated[:50], "dead_lettered": dead[:50], "refused_bad_input": bad_input[:50],
        "spurious_dead_letters": spurious[:50],
        "throughput_claims_per_min": round(settled / span * 60, 1),
        "throughput_emails_per_min": round(len(settle_t) / span * 60, 1),
        "duration_s": round(span, 1),
        "drop_s": round(t_dropped - t0, 3),
        "latency_email_to_ncb_s": {"p50": rnd(percentile(ncb_lat, 0.5)), "p95": rnd(percentile(ncb_lat, 0.95)),
                                   "min": rnd(min(ncb_lat, default=None)), "max": rnd(max(ncb_lat, default=None)),
                                   "n": len(ncb_lat)},
        "latency_email_to_review_s": {"p50": rnd(percentile(review_lat, 0.5)), "p95": rnd(percentile(review_lat, 0.95)),
                                      "n": len(review_lat), "resolution_s": args.sample},
        "max_in_flight_emails": max_in_flight,
        "max_in_flight_sampled": max((s["in_flight"] for s in samples), default=0),
        "max_in_pipeline_sampled": max((s["in_pipeline"] for s in samples), default=0),
        "redis_used_memory_peak_bytes": max(peak_mem, peak_end),
        "redis_used_memory_end_bytes": used_end,
        "kill": kill_info,
        "xautoclaim": autoclaims,
        "ocr_consumers_at_end": [{k: c.get(k) for k in ("name", "pending", "idle")} for c in consumers_end],
        "samples": samples,
    }
    res["ok"] = not lost and not duplicated and not dead and not stray["ncb"] and not stray["review"]
    return res


def is_bad_input(reason):
    return ": bad input: " in str(reason)


def bad_input_kinds(res):
    """' (corrupt file 2, OCR page timeout 1)': Tesseract's page_timeout is reported as bad input
    too, although under CPU contention a good receipt can hit it."""
    items = res.get("refused_bad_input") or []
    timeouts = sum(1 for i in items if "took longer than" in i)
    return f" (OCR page timeout {timeouts}, other {len(items) - timeouts})" if items else ""


def reasons(items):
    """Review reasons, most common first; numbers and quoted values folded so alike ones add up."""
    counts = {}
    for r in items:
        text = re.sub(r"'[^']*'|\d+(\.\d+)?", "…", str(r.get("reason") or ""))[:160]
        counts[text] = counts.get(text, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:15])


CLAIMED = re.compile(r"^(\S+Z) .*claimed (\d+) entries of stream '([^']+)'")


def autoclaimed(stack, t0, kill_info):
    """XAUTOCLAIMs the workers logged ("claimed N entries ... idle for more than"), each with its
    time, and how many happened while no worker was dead (before the kill, or in a phase
    without one): those took entries from a live worker."""
    events = []
    for name in PROCS:
        try:
            with open(stack.logs[name], encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = CLAIMED.match(line)
                    if m:
                        at = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() - t0
                        events.append({"process": name, "at": round(at, 1), "entries": int(m.group(2)), "stream": m.group(3)})
        except (OSError, KeyError):
            pass
    killed = kill_info["killed_at"] if kill_info else None
    live = [e for e in events if killed is None or e["at"] < killed]
    return {"events": events[:200], "entries_total": sum(e["entries"] for e in events),
            "entries_while_no_worker_was_dead": sum(e["entries"] for e in live)}


def rnd(v):
    return None if v is None else round(v, 2)


# ---- report --------------------------------------------------------------------------------

def draw(phase, res, path):
    samples = res["samples"]
    series = lambda f: [(s["at"], f(s)) for s in samples]  # noqa: E731
    markers = []
    if res.get("kill"):
        markers.append((res["kill"]["killed_at"], f"SIGKILL {res['kill']['worker']}"))
        if "restarted_at" in res["kill"]:
            markers.append((res["kill"]["restarted_at"], "restarted"))
    panels = [
        {"title": "Queue depth per stage (Redis streams, sampled every second)", "y_label": "entries",
         "series": [{"name": "ocr: unread (lag)", "points": series(lambda s: s["streams"]["ocr"]["lag"])},
                    {"name": "ocr: pending (read, no ack)", "points": series(lambda s: s["streams"]["ocr"]["pending"]), "dash": True},
                    {"name": "delivery: unread (lag)", "points": series(lambda s: s["streams"]["delivery"]["lag"])},
                    {"name": "delivery: pending", "points": series(lambda s: s["streams"]["delivery"]["pending"]), "dash": True}]},
        {"title": "Claims", "y_label": "count",
         "series": [{"name": "emails in flight", "points": series(lambda s: s["in_flight"])},
                    {"name": "receipts at NCB", "points": series(lambda s: s["ncb"])},
                    {"name": "receipts in review", "points": series(lambda s: s["review"])}]},
        {"title": "Redis memory", "y_label": "MiB",
         "series": [{"name": "used_memory", "points": series(lambda s: round(s["used_memory"] / 2**20, 1))}]},
    ]
    title = f"docpipe load test, phase {phase}: {res['emails']} emails, {res['receipts']} receipts, 4 processes"
    with open(path, "w") as f:
        f.write(svgplot.chart(title, panels, markers))


def mib(b):
    return f"{b / 2**20:.0f} MiB"


def summary_md(report):
    lines = ["# docpipe load test", "",
             f"{report['started']}, {report['machine']}; docpipe `{report['docpipe']}`; "
             f"CLAIM_IDLE={report['claim_idle']}.", ""]
    for res in report["phases"]:
        ph = res["phase"]
        lines.append(f"## Phase `{ph}`" + (" (one OCR worker SIGKILLed halfway)" if ph == "kill" else ""))
        lines.append("")
        if "error" in res:
            lines += [f"**FAILED**: {res['error']}", ""]
            if "counts" not in res:
                continue
        c = res["counts"]
        lat = res["latency_email_to_ncb_s"]
        lines += [
            "| | |", "|---|---|",
            f"| emails / receipts | {res['emails']} / {res['receipts']} |",
            f"| throughput | {res['throughput_claims_per_min']} receipts/min ({res['throughput_emails_per_min']} emails/min) over {res['duration_s']} s |",
            f"| email → NCB latency | p50 {lat['p50']} s, p95 {lat['p95']} s (min {lat['min']}, max {lat['max']}, n={lat['n']}) |",
            f"| email → review latency | p50 {res['latency_email_to_review_s']['p50']} s, p95 {res['latency_email_to_review_s']['p95']} s (n={res['latency_email_to_review_s']['n']}, sampled every {res['latency_email_to_review_s']['resolution_s']} s) |",
            f"| max emails in flight | {res['max_in_flight_emails']} (dropped, not yet settled at NCB/review); sampled: {res['max_in_flight_sampled']}; accepted by the intake and not settled: {res['max_in_pipeline_sampled']} |",
            f"| Redis used_memory | peak {mib(res['redis_used_memory_peak_bytes'])}, at the end {mib(res['redis_used_memory_end_bytes'])} |",
            f"| NCB | {c['ncb_distinct_claims']} distinct claims ({c['ncb_claims_matched']} matched to an email); {c['ncb_post_attempts']} POSTs; "
            f"{c['ncb_idempotent_replays']} answered as Idempotent-Replayed (on {c['ncb_claims_with_replayed_key']} claims); {c['ncb_key_reused_422']} key-reused 422s |",
            f"| review queue | {c['review_items']} items ({c['review_matched']} matched); admin API `/api/v1/exceptions` total: {c['admin_api_review_jobs']} |",
            f"| exactly once | **{c['settled_exactly_once']} of {res['receipts']}**; lost {c['lost']}, duplicated {c['duplicated']}, "
            f"at NCB and in review {c['ncb_and_review']}, dead-lettered {c['dead_lettered']}, unmatched NCB/review {c['stray_ncb']}/{c['stray_review']}; "
            f"refused as bad input (its one place: a dead letter with the reason) {c.get('refused_bad_input', 0)}{bad_input_kinds(res)} |",
            f"| dead letters of delivered receipts | {c.get('spurious_dead_letters', 0)} (the receipt is at NCB or in review once, and a "
            f"worker that also had its entry dead-lettered it: not a claim, a bug signal; see *Findings* in bench/load/README.md) |",
            f"| member id | NCB \"Policy Number\" = the email's member id on {c['ncb_policy_number_is_member_id']} claims, other on {c['ncb_policy_number_other']} |",
        ]
        k = res.get("kill")
        if k:
            lines.append(f"| kill | {k['worker']} (pid {k['pid']}, consumer `{k['consumer']}`) SIGKILLed at t={k['killed_at']} s with "
                         f"{k['pending_on_killed_consumer']} entries pending on it; restarted at t={k.get('restarted_at')} s |")
            dead_c = [c2 for c2 in res["ocr_consumers_at_end"] if c2["name"] == k["consumer"]]
            if dead_c:
                lines.append(f"| killed consumer at the end | pending {dead_c[0]['pending']} (its entries were XAUTOCLAIMed by a live worker) |")
        top = list(res.get("review_reasons", {}).items())[:5]
        if top:
            lines.append("| review reasons (top 5) | " + "; ".join(f"{n}× {r}" for r, n in top).replace("|", "/") + " |")
        last = res["samples"][-1]["streams"] if res.get("samples") else {}
        if last:
            extra = last["delivery"]["length"] - res["receipts"]
            lines.append(f"| stream entries appended | ocr {last['ocr']['length']} for {res['receipts']} receipts; delivery "
                         f"{last['delivery']['length']} " +
                         (f"({extra} more than the receipts: OCR results appended twice, by two workers that both had the "
                          f"entry; the sinks' ledgers and NCB's Idempotency-Key keep them from being delivered twice) |"
                          if extra > 0 else "(one per receipt) |"))
        x = res.get("xautoclaim", {})
        lines.append(f"| XAUTOCLAIM | {x.get('entries_total', 0)} entries claimed in all; "
                     f"{x.get('entries_while_no_worker_was_dead', 0)} of them while no worker was dead (taken from a live worker) |")
        js = res.get("job_status_of_settled_claims", {})
        lines.append(f"| job records (diagnostic) | of the NCB claims: {js.get('ncb')}; of the review items: {js.get('review')} |")
        lines += ["", f"![queue depth](queue-depth-{ph}.svg)", "",
                  f"Verdict: **{'PASS' if res.get('ok') else 'FAIL'}**", ""]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emails", type=int, default=500, help="claim emails per phase (default 500)")
    ap.add_argument("--phases", default="steady,kill", help="comma list of steady, kill (default: both)")
    ap.add_argument("--kill", dest="phases", action="store_const", const="kill", help="only the phase with the worker kill")
    ap.add_argument("--no-kill", dest="phases", action="store_const", const="steady", help="only the phase without a kill")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "load"), help="report folder (default build/load)")
    ap.add_argument("--docpipe", default=os.path.join(ROOT, "build", "bin", "docpipe"), help="docpipe binary")
    ap.add_argument("--data", default=claim_emails.DEFAULT_DATA, help="folder with sroie-train/ and sroie-dev/ (default ../shared/data)")
    ap.add_argument("--claim-idle", default="15s", help="CLAIM_IDLE for the stream sources (default 15s)")
    ap.add_argument("--kill-worker", default="busiest", choices=["busiest", "ocr-1", "ocr-2"],
                    help="which OCR worker to kill (default: the one with the most entries pending on it)")
    ap.add_argument("--kill-at", type=float, default=0.5, help="kill when this share of the receipts is settled (default 0.5)")
    ap.add_argument("--restart-after", type=float, default=5.0, help="seconds between the kill and the restart (default 5)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds a phase may take after the drop (default 600 + 20 per email)")
    ap.add_argument("--stall", type=float, default=300, help="fail when no receipt settles for this many seconds (default 300)")
    ap.add_argument("--settle-grace", type=float, default=30, help="seconds to wait for missing claims once every stream is drained")
    ap.add_argument("--sample", type=float, default=1.0, help="sampling interval in seconds (default 1)")
    ap.add_argument("--two-every", type=int, default=10, help="every Nth email carries two receipts (0: never; default 10)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--ocr-device", default=None, help="OCR_DEVICE for the workers (default: the pipeline's, auto)")
    ap.add_argument("--keep", action="store_true", help="keep each phase's work folder (emails, state, logs)")
    ap.add_argument("--rewrite-report", metavar="REPORT_JSON",
                    help="only write summary.md and the charts again from an earlier report.json (into --out)")
    args = ap.parse_args()
    if args.rewrite_report:
        with open(args.rewrite_report) as f:
            report = json.load(f)
        os.makedirs(args.out, exist_ok=True)
        for res in report["phases"]:
            if res.get("samples"):
                draw(res["phase"], res, os.path.join(args.out, f"queue-depth-{res['phase']}.svg"))
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(summary_md(report))
        return 0
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not phases or any(p not in ("steady", "kill") for p in phases) or args.emails < 1:
        ap.error("--phases takes steady and/or kill; --emails must be at least 1")
    if args.timeout is None:
        args.timeout = 600 + 20 * args.emails
    args.docpipe = os.path.abspath(args.docpipe)
    if not os.access(args.docpipe, os.X_OK):
        print(f"load: no docpipe binary at {args.docpipe} (build it: make build, or give --docpipe)", file=sys.stderr)
        return 2
    for tool in ("redis-server",):
        if not shutil.which(tool):
            print(f"load: {tool} not found (scripts/install-deps.sh installs it)", file=sys.stderr)
            return 2
    try:
        images = claim_emails.receipt_images(args.data)
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    parse_duration(args.claim_idle)
    os.makedirs(args.out, exist_ok=True)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    run_tag = time.strftime("%Y%m%d%H%M%S")
    report = {"started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "docpipe": args.docpipe,
              "machine": f"{os.cpu_count()} CPUs, {socket.gethostname()}", "claim_idle": args.claim_idle,
              "emails": args.emails, "images": len(images), "phases": []}
    ok = True
    try:
        for i, phase in enumerate(phases):
            res = run_phase(args, phase, i + 1, run_tag, images, args.out)
            if "samples" in res:
                draw(phase, res, os.path.join(args.out, f"queue-depth-{phase}.svg"))
            report["phases"].append(res)
            ok = ok and res.get("ok", False) and "error" not in res
            if "counts" in res:
                c = res["counts"]
                lat = res["latency_email_to_ncb_s"]
                note(f"phase {phase}: {'PASS' if res['ok'] else 'FAIL'}: {c['settled_exactly_once']} of {res['receipts']} receipts "
                     f"exactly once (NCB {c['ncb_claims_matched']}, review {c['review_matched']}); lost {c['lost']}, "
                     f"duplicated {c['duplicated']}, dead-lettered {c['dead_lettered']}, refused as bad input {c['refused_bad_input']}; "
                     f"NCB replays {c['ncb_idempotent_replays']}; "
                     f"{res['throughput_claims_per_min']} receipts/min; email->NCB p50 {lat['p50']} s p95 {lat['p95']} s; "
                     f"max in flight {res['max_in_flight_emails']}; redis peak {mib(res['redis_used_memory_peak_bytes'])}")
                for what in ("lost", "duplicated", "dead_lettered", "refused_bad_input", "spurious_dead_letters"):
                    for item in res[what][:10]:
                        note(f"  {what}: {item}")
    except KeyboardInterrupt as e:
        note(f"interrupted ({e}); processes stopped")
        ok = False
    finally:
        with open(os.path.join(args.out, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(summary_md(report))
    note(f"report: {os.path.join(args.out, 'summary.md')} (and report.json, queue-depth-*.svg, logs/)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
