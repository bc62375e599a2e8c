"""A minimal Redis client (RESP2 over one TCP socket), enough for the load test's reads:
no dependency beyond the standard library (Debian's python3-redis is not installed)."""

import socket


class RedisError(Exception):
    pass


class Redis:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def close(self):
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.reader.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise RedisError(f"unexpected reply {line[:40]!r}")

    # helpers ------------------------------------------------------------------------------
    def scan(self, pattern, count=1000):
        cursor, keys = b"0", []
        while True:
            cursor, batch = self("SCAN", cursor, "MATCH", pattern, "COUNT", count)
            keys += [k.decode() for k in batch]
            if cursor in (b"0", "0"):
                return keys

    def info(self, section):
        text = self("INFO", section).decode()
        out = {}
        for line in text.splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def pairs(self, flat):
        """XINFO's flat [k1, v1, k2, v2...] -> dict with str keys."""
        d = {}
        for i in range(0, len(flat) - 1, 2):
            k = flat[i].decode() if isinstance(flat[i], bytes) else flat[i]
            v = flat[i + 1]
            d[k] = v.decode() if isinstance(v, bytes) else v
        return d
