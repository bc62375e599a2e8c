#!/usr/bin/env python3
"""`docpipe run` as a systemd Type=notify service, checked through a real notify socket.

The test plays systemd's part: it binds an AF_UNIX datagram socket, starts docpipe with
NOTIFY_SOCKET (and WATCHDOG_USEC) pointing at it, and reads what arrives. Cases:
  invalid   a pipeline that does not load: docpipe exits 1 and never says READY=1.
  ready     READY=1 arrives only once the admin server answers; WATCHDOG=1 pings while idle
            and while documents flow; STATUS= says docs/min, in flight and the review queue.
  wedge     a test node that never returns (transform.test_wedge): the pings stop once
            runtime.stuck_after has passed, and the log says why.
  reload    SIGHUP with a changed valid file while files keep arriving (RELOADING=1, then
            READY=1), then SIGHUP with an invalid file (refused: no RELOADING=1, the old graph
            keeps running), then SIGTERM (STOPPING=1, exit 0). Every file is delivered exactly
            once: the sink's journal has one line per file, no more, no fewer.
Usage: service_notify.py DOCPIPE CRASH_PLUGIN_DIR
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

DOCPIPE = os.path.abspath(sys.argv[1])
PLUGINS = os.path.abspath(sys.argv[2])
FAILURES = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        FAILURES.append(what)
    return condition


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotifySocket:
    """systemd's end: every datagram, with the time it arrived."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, {key: value})
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def with_key(self, key, since=0.0):
        with self.lock:
            return [(t, m) for t, m in self.messages if key in m and t >= since]

    def wait_for(self, key, timeout, since=0.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.with_key(key, since)
            if found:
                return found[0]
            time.sleep(0.05)
        return None

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def pipeline(work, port, extra_node="", stuck_after="30s", tag="a"):
    return f"""version: 1
max_in_flight: 8
plugin_paths: ['{PLUGINS}']
state: {{backend: sqlite, path: '{work}/state.db'}}
admin: {{listen: '127.0.0.1:{port}'}}
logging: {{level: info}}
runtime: {{poll_wait: 100ms, drain_timeout: 10s, stuck_after: {stuck_after}}}
nodes:
  inbox:
    component: source.directory
    config: {{path: '{work}/inbox', patterns: ['*.txt'], settle_time: 0s, poll_interval: 100ms}}
  dedup: {{component: transform.dedup}}
  mark: {{component: transform.test_fields, config: {{tag: {tag}}}}}
  wedge: {{component: transform.test_wedge}}
  out:
    component: sink.crash_files
    config: {{path: '{work}/out', journal: '{work}/journal.txt'}}
{extra_node}edges: [inbox -> dedup -> mark -> wedge -> out]
"""


def start(work, yaml_text, notify, watchdog_usec=None):
    with open(f"{work}/p.yaml", "w") as f:
        f.write(yaml_text)
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    log = open(f"{work}/service.log", "ab")
    return subprocess.Popen([DOCPIPE, "run", "-c", f"{work}/p.yaml"], env=env, stdout=log, stderr=log)


def log_text(work):
    with open(f"{work}/service.log", errors="replace") as f:
        return f.read()


def drop(work, name, body="hello\n"):
    os.makedirs(f"{work}/inbox", exist_ok=True)
    tmp = f"{work}/inbox/.{name}.tmp"
    with open(tmp, "w") as f:
        f.write(body)
    os.rename(tmp, f"{work}/inbox/{name}")


def journal(work):
    try:
        with open(f"{work}/journal.txt") as f:
            return [line.split()[1] for line in f if line.strip()]
    except FileNotFoundError:
        return []


def wait_until(condition, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def case_invalid(root):
    work = f"{root}/invalid"
    os.makedirs(work)
    notify = NotifySocket(f"{work}/notify.sock")
    proc = start(work, "version: 1\nnodes:\n  a: {component: source.nope}\nedges: []\n", notify)
    rc = proc.wait(timeout=60)
    time.sleep(0.3)
    check(rc != 0, f"invalid pipeline: docpipe exits non-zero (rc={rc})")
    check(not notify.with_key("READY"), "invalid pipeline: READY=1 is never sent")
    notify.close()


def case_ready_and_wedge(root):
    work = f"{root}/ready"
    os.makedirs(f"{work}/inbox")
    notify = NotifySocket(f"{work}/notify.sock")
    port = free_port()
    started = time.monotonic()
    proc = start(work, pipeline(work, port, stuck_after="2s"), notify, watchdog_usec=400_000)
    try:
        ready = notify.wait_for("READY", 60)
        if not check(ready is not None, "READY=1 arrives"):
            print(log_text(work))
            return
        # READY only once the admin server listens: it must answer right away.
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                answered = r.status == 200
        except OSError as e:
            answered = False
            print("  /health:", e)
        check(answered, "when READY=1 arrives, the admin server already answers /health")
        check("STATUS" in ready[1] and "in flight" in ready[1]["STATUS"] and "in review" in ready[1]["STATUS"],
              f"READY=1 carries a STATUS= line ({ready[1].get('STATUS')!r})")
        time.sleep(1.5)
        idle_pings = notify.with_key("WATCHDOG", since=ready[0])
        check(len(idle_pings) >= 3, f"idle and healthy: WATCHDOG=1 pings arrive ({len(idle_pings)} in 1.5 s at a 0.4 s period)")
        for i in range(3):
            drop(work, f"flow-{i}.txt", body=f"flowing document {i}\n")  # distinct: dedup compares contents
        check(wait_until(lambda: len(journal(work)) == 3, 30), "documents flow while pinging")
        # Wedge the graph: this document never leaves transform.test_wedge.
        drop(work, "wedge-me.txt", body="this one wedges\n")
        wedged_at = time.monotonic()
        time.sleep(2.0 + 2.5)  # stuck_after (2 s) and a margin for the last pings in flight
        quiet_from = time.monotonic()
        time.sleep(1.5)
        late = notify.with_key("WATCHDOG", since=quiet_from)
        check(not late, f"a wedged graph stops the pings ({len(late)} WATCHDOG=1 more than 2 s past stuck_after)")
        check("watchdog pings stop" in log_text(work), "the log says why the pings stopped")
        check(len(notify.with_key("WATCHDOG", since=wedged_at)) >= 1, "pings went on during the first seconds of the wedged call")
    finally:
        proc.kill()
        proc.wait()
        notify.close()
    print(f"  (ready case took {time.monotonic() - started:.1f} s)")


def case_reload(root):
    work = f"{root}/reload"
    os.makedirs(f"{work}/inbox")
    notify = NotifySocket(f"{work}/notify.sock")
    port = free_port()
    proc = start(work, pipeline(work, port, tag="first"), notify)
    names = []
    stop_feeding = threading.Event()

    def feed():
        i = 0
        while not stop_feeding.is_set():
            name = f"doc-{i:03d}.txt"
            drop(work, name, body=f"document {i}\n")
            names.append(name)
            i += 1
            time.sleep(0.05)

    try:
        ready = notify.wait_for("READY", 60)
        if not check(ready is not None, "reload: READY=1 at start"):
            print(log_text(work))
            return
        feeder = threading.Thread(target=feed)
        feeder.start()
        time.sleep(1.0)
        # A valid change: the tag transform.test_fields writes.
        with open(f"{work}/p.yaml", "w") as f:
            f.write(pipeline(work, port, tag="second"))
        hup_at = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", 30, since=hup_at)
        check(reloading is not None, "SIGHUP with a valid file: RELOADING=1")
        again = notify.wait_for("READY", 60, since=reloading[0] if reloading else hup_at)
        check(again is not None, "then READY=1 once the new graph runs")
        time.sleep(1.0)
        # An invalid file: refused, the running graph goes on.
        with open(f"{work}/p.yaml", "w") as f:
            f.write(pipeline(work, port).replace("transform.test_fields", "transform.test_feilds"))
        bad_at = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: "reload refused" in log_text(work), 30), "SIGHUP with an invalid file: the reload is refused")
        check("test_feilds" in log_text(work), "the refusal names the problem in the file")
        check(not notify.with_key("RELOADING", since=bad_at), "an invalid file sends no RELOADING=1")
        check(proc.poll() is None, "the process keeps running after the refused reload")
        time.sleep(1.0)
        stop_feeding.set()
        feeder.join()
        settled = wait_until(lambda: len(journal(work)) >= len(names), 60)
        check(settled, f"every file dropped was delivered ({len(journal(work))} of {len(names)})")
        delivered = journal(work)
        twice = sorted({n for n in delivered if delivered.count(n) > 1})
        check(not twice, f"no file was delivered twice ({twice[:5]})")
        check(sorted(set(delivered)) == sorted(names), "the delivered files are exactly the dropped ones")
        # Files from after the reload went through the new graph (its tag).
        outs = os.listdir(f"{work}/out")
        tags = set()
        for name in outs:
            with open(f"{work}/out/{name}") as f:
                text = f.read()
            tags.update(t for t in ("first", "second") if f'"tag": "{t}"' in text)
        check(tags == {"first", "second"}, f"documents went through the old graph and then the new one (tags seen: {sorted(tags)})")
        term_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        check(notify.wait_for("STOPPING", 5, since=term_at) is not None, "SIGTERM: STOPPING=1")
        check(rc == 0, f"SIGTERM: a clean exit (rc={rc})")
    finally:
        stop_feeding.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()


def main():
    with tempfile.TemporaryDirectory(prefix="docpipe-notify-") as root:
        case_invalid(root)
        case_ready_and_wedge(root)
        case_reload(root)
        if FAILURES:
            for name in os.listdir(root):
                log = f"{root}/{name}/service.log"
                if os.path.exists(log):
                    print(f"---- {name}/service.log (last 40 lines)")
                    with open(log, errors="replace") as f:
                        print("".join(f.readlines()[-40:]))
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
