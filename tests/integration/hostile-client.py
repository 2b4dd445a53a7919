#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A client that misbehaves on a Unix socket, for test-hostile.sh.

  hostile-client.py args SOCK N COUNT       COUNT requests with N query arguments each, all held
                                            open; prints each one's status line or "none"
  hostile-client.py flood SOCK N UNTIL      opens N connections and holds them until the file
                                            UNTIL exists; prints "opened N closed-by-peer M"
  hostile-client.py slow SOCK header|body   sends a request a byte a second; prints "closed
                                            after S s" when the server closes it, or "open"
  hostile-client.py get SOCK PATH           one request; prints its status code

Every wait has a limit, so that a server that never answers fails the test instead of
hanging it.
"""
import os
import resource
import socket
import sys
import time

WAIT = 30


def connect(path, timeout=WAIT):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def status_line(s):
    try:
        data = s.recv(4096)
    except socket.timeout:
        return "none"
    except OSError as e:
        return "error " + e.strerror
    return data.split(b"\r\n", 1)[0].decode() if data else "closed"


def cmd_args(path, n, count):
    query = "&".join("a%d=%d" % (i, i) for i in range(int(n)))
    held = []
    for _ in range(int(count)):
        s = connect(path, 10)
        s.sendall(("GET /api/health?%s HTTP/1.1\r\nHost: corral\r\n\r\n" % query).encode())
        held.append(s)
    for s in held:
        print(status_line(s))


def cmd_flood(path, n, until):
    # As any agent may: its soft limit of descriptors up to the hard one.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    for _ in range(int(n)):
        try:
            held.append(connect(path, 5))
        except OSError:
            break
    # Connections corrald refused read end of file at once; the others stay open. Counted
    # until the count holds for a second (corrald accepts the last ones a little later).
    for s in held:
        s.setblocking(False)
    closed, last, stable_since = set(), -1, time.monotonic()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for i, s in enumerate(held):
            if i in closed:
                continue
            try:
                if s.recv(1) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        if len(closed) != last:
            last, stable_since = len(closed), time.monotonic()
        elif time.monotonic() - stable_since >= 1:
            break
        time.sleep(0.1)
    closed = len(closed)
    print("opened %d closed-by-peer %d" % (len(held), closed), flush=True)
    deadline = time.monotonic() + 300
    while not os.path.exists(until) and time.monotonic() < deadline:
        time.sleep(0.05)
    for s in held:
        s.close()


def cmd_slow(path, mode):
    s = connect(path)
    if mode == "header":
        data = b"GET /api/health HTTP/1.1\r\nHost: corral\r\nX-Slow: " + b"x" * 100 + b"\r\n\r\n"
    else:
        body = b'{"name":"' + b"x" * 100 + b'"}'
        data = b"POST /api/companies HTTP/1.1\r\nHost: corral\r\nContent-Type: application/json\r\n"
        data += b"Content-Length: %d\r\n\r\n" % len(body) + body
        # The headers at once, then the body a byte a second.
        head = data[: len(data) - len(body)]
        s.sendall(head)
        data = body
    start = time.monotonic()
    for i in range(len(data)):
        try:
            s.sendall(data[i : i + 1])
        except OSError:
            break
        s.settimeout(1)
        try:
            if s.recv(4096) == b"":
                break
        except socket.timeout:
            continue
        except OSError:
            break
        if time.monotonic() - start > WAIT * 2:
            print("open")
            return
    else:
        print("open")
        return
    print("closed after %d s" % round(time.monotonic() - start))


def cmd_get(path, url):
    s = connect(path)
    s.sendall(("GET %s HTTP/1.1\r\nHost: corral\r\nConnection: close\r\n\r\n" % url).encode())
    line = status_line(s)
    print(line.split(" ")[1] if line.startswith("HTTP/") else line)


def main():
    cmds = {"args": cmd_args, "flood": cmd_flood, "slow": cmd_slow, "get": cmd_get}
    if len(sys.argv) < 3 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
