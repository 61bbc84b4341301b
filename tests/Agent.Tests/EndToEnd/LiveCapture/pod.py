# Socket roles run inside a pod network namespace by the live-capture end-to-end tests.
# Every role prints one line when it is ready or done, so the test waits on output, never on sleeps.
import socket, sys, threading, time

def tcp_server(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64); print("ready", flush=True)
    while True:
        c, _ = s.accept()
        # One thread per connection: a connection held open must not keep the next one waiting.
        threading.Thread(target=serve, args=(c,), daemon=True).start()

def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = recv_exact(c, 100)
        if not data: break
        c.sendall(b"r" * 200)
    c.close()

def tcp_loop(host, port, pause_ms):
    # Short connections one after another; each prints its source port and its start and end (Unix seconds).
    print("looping", flush=True)
    while True:
        t0 = time.time()
        try:
            c = socket.create_connection((host, port), timeout=5)
            sport = c.getsockname()[1]
            c.sendall(b"q" * 100)
            ok = len(recv_exact(c, 200)) == 200
            c.close()
            if ok: print("conn %d %.6f %.6f" % (sport, t0, time.time()), flush=True)
        except OSError:
            pass
        time.sleep(pause_ms / 1000.0)

def recv_exact(c, n):
    buf = b""
    while len(buf) < n:
        part = c.recv(n - len(buf))
        if not part: return b""
        buf += part
    return buf

def tcp_client(host, port, rounds, hold):
    c = socket.create_connection((host, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(rounds):
        c.sendall(b"q" * 100)
        if len(recv_exact(c, 200)) != 200: raise SystemExit("short reply")
    if hold:
        print("holding", flush=True); sys.stdin.read()
    c.close(); print("done", flush=True)

def tcp_chatty(host, port, pause_ms):
    # One connection held open, a request and its answer every pause.
    c = socket.create_connection((host, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print("chatting %d" % c.getsockname()[1], flush=True)
    while True:
        c.sendall(b"q" * 100)
        if len(recv_exact(c, 200)) != 200: raise SystemExit("short reply")
        time.sleep(pause_ms / 1000.0)

def wait_for_eth0():
    # Waits for the CNI to wire this namespace: eth0 present and up.
    while True:
        try:
            with open("/sys/class/net/eth0/operstate") as f:
                if f.read().strip() in ("up", "unknown"):
                    with open("/sys/class/net/eth0/flags") as g:
                        if int(g.read(), 16) & 1: return
        except OSError:
            pass
        time.sleep(0.0005)

def first_connect(host, port, delay_ms):
    # A new pod's process: starts before its network exists, connects delay_ms after eth0 is up, once.
    print("waiting", flush=True)
    wait_for_eth0()
    up = time.time()
    time.sleep(delay_ms / 1000.0)
    for _ in range(200):
        try:
            t0 = time.time()
            c = socket.create_connection((host, port), timeout=5)
            break
        except OSError:
            time.sleep(0.001)  # the address may not be usable for a moment after the link came up
    sport = c.getsockname()[1]
    c.sendall(b"q" * 100)
    recv_exact(c, 200)
    c.close()
    print("conn %d %.6f %.6f" % (sport, up, t0), flush=True)

def udp_burst(host, port, unused, count):
    # From the moment eth0 is up, a datagram every millisecond: the first one captured says how long capture was blind.
    print("waiting", flush=True)
    wait_for_eth0()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    first = None
    for i in range(count):
        try:
            s.sendto(b"b" * 20, (host, port))
            if first is None: first = time.time()
        except OSError:
            pass
        time.sleep(0.001)
    print("burst %.6f" % first, flush=True)

def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=5)
    except ConnectionRefusedError:
        print("refused", flush=True); return
    raise SystemExit("connected")

def udp_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port)); print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(b"u" * 150, peer)

def udp_client(host, port, count, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", sport)); s.settimeout(3)
    for _ in range(count):
        s.sendto(b"d" * 60, (host, port)); s.recvfrom(2048)
    print("done", flush=True)

def udp_stream(host, port, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", sport))
    print("streaming", flush=True)
    while True:
        try: s.sendto(b"s" * 40, (host, port))
        except OSError: pass
        time.sleep(0.02)

def try_connect(host, port, timeout):
    # A connection a policy may stop: connected, refused, or no answer within the timeout (the kernel retries the SYN).
    try:
        socket.create_connection((host, port), timeout=timeout).close(); print("connected", flush=True)
    except ConnectionRefusedError:
        print("refused", flush=True)
    except OSError:
        print("timeout", flush=True)

def udp_send(host, port, count, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", sport))
    for _ in range(count):
        s.sendto(b"q" * 30, (host, port)); time.sleep(0.05)
    print("sent", flush=True)

def http_get(host, port, path):
    # One plaintext HTTP/1.1 request and its answer on a fresh connection.
    import http.client
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request("GET", path)
    r = c.getresponse(); r.read(); c.close()
    print("status %d" % r.status, flush=True)

role = sys.argv[1]; a = sys.argv[2:]
if role == "tcp-server": tcp_server(int(a[0]))
elif role == "tcp-client": tcp_client(a[0], int(a[1]), int(a[2]), False)
elif role == "tcp-hold": tcp_client(a[0], int(a[1]), int(a[2]), True)
elif role == "refused": refused(a[0], int(a[1]))
elif role == "tcp-loop": tcp_loop(a[0], int(a[1]), int(a[2]))
elif role == "tcp-chatty": tcp_chatty(a[0], int(a[1]), int(a[2]))
elif role == "first-connect": first_connect(a[0], int(a[1]), int(a[2]))
elif role == "udp-burst": udp_burst(a[0], int(a[1]), int(a[2]), int(a[3]))
elif role == "udp-server": udp_server(int(a[0]))
elif role == "udp-client": udp_client(a[0], int(a[1]), int(a[2]), int(a[3]))
elif role == "udp-stream": udp_stream(a[0], int(a[1]), int(a[2]))
elif role == "try-connect": try_connect(a[0], int(a[1]), float(a[2]))
elif role == "udp-send": udp_send(a[0], int(a[1]), int(a[2]), int(a[3]))
elif role == "http-get": http_get(a[0], int(a[1]), a[2])
else: raise SystemExit("unknown role " + role)
