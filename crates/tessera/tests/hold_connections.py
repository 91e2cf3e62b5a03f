"""Hold many idle HTTPS connections to a tessera server, as an attacker would.

usage: hold_connections.py PORT CAFILE SPEC

SPEC is groups of SOURCE:COUNT (a 127.0.0.x address to bind, and how many connections from it)
separated by `,` within a group and `;` between groups: the groups run one after the other,
the sources of a group at once (one thread each). Each connection is one of four kinds:
  tls     the TLS handshake, then nothing
  header  the handshake, then half of a request's headers
  h2      the handshake with ALPN h2, then the HTTP/2 preface and SETTINGS, then nothing
  body    the handshake, a request's whole headers, then one byte of a 100,000-byte body
Prints one JSON line {"opened": N, "refused": N, "open": N} once all were tried (a refused
one was closed by the server before or during its handshake; "open" counts those still
open then), then waits for a line on stdin, then waits up to WAIT seconds (the line's number)
for the server to close the rest and prints {"still_open": N}.
"""

import json
import select
import socket
import ssl
import sys
import threading
import time


def is_closed(s):
    """True when the server closed the connection (reads what is waiting)."""
    try:
        p = select.poll()
        p.register(s, select.POLLIN)
        if not p.poll(0):
            return False
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except (OSError, ssl.SSLError):
        return True


def main():
    port = int(sys.argv[1])
    cafile = sys.argv[2]
    spec = sys.argv[3]
    plain = ssl.create_default_context(cafile=cafile)
    plain.set_alpn_protocols(["http/1.1"])
    h2 = ssl.create_default_context(cafile=cafile)
    h2.set_alpn_protocols(["h2"])
    held = []
    refused = [0]
    lock = threading.Lock()

    def open_from(source, n, first):
        for i in range(first, first + n):
            kind = ("tls", "header", "h2", "body")[i % 4]
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.settimeout(10)
            try:
                raw.bind((source, 0))
                raw.connect(("127.0.0.1", port))
                s = (h2 if kind == "h2" else plain).wrap_socket(raw, server_hostname="localhost")
                if kind == "body":
                    # Whole headers, then a body that never comes: a request in progress.
                    s.sendall(
                        b"POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                    )
                elif kind == "header":
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                elif kind == "h2":
                    # Preface, then an empty SETTINGS frame.
                    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                s.setblocking(False)
                with lock:
                    held.append(s)
            except (OSError, ssl.SSLError):
                with lock:
                    refused[0] += 1
                raw.close()

    # Groups one after the other; in a group, one thread per source (the handshakes release
    # the GIL).
    first = 0
    for group in spec.split(";"):
        threads = []
        for item in group.split(","):
            source, n = item.split(":")
            threads.append(threading.Thread(target=open_from, args=(source, int(n), first)))
            first += int(n)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    refused = refused[0]
    still = [s for s in held if not is_closed(s)]
    print(json.dumps({"opened": len(held), "refused": refused, "open": len(still)}), flush=True)
    line = sys.stdin.readline()
    wait = float(line.strip() or "0")
    deadline = time.time() + wait
    while still and time.time() < deadline:
        time.sleep(0.2)
        still = [s for s in still if not is_closed(s)]
    print(json.dumps({"still_open": len(still)}), flush=True)


if __name__ == "__main__":
    main()
