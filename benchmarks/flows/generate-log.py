# Writes a synthetic flow log of about N bytes (design §3 records, ~880 B each) as rotated files in DIR.
# Usage: python3 generate-log.py DIR BYTES   (1 GiB takes about 8 s)
import sys, os
out = sys.argv[1]; total = int(sys.argv[2])
os.makedirs(out, exist_ok=True)
tmpl = ('{"time":"2026-11-26T%02d:%02d:%02d.%06dZ","event":"%s","flow_id":"%016x","node":"node-a","interface":"cali%08x","protocol":"TCP",'
        '"src":{"ip":"10.244.%d.%d","port":%d,"kind":"pod","namespace":"ns-%d","pod":"app-%d-7d9f-%05d","uid":"u-%d","workload":"Deployment/app-%d","labels":{"app":"app-%d"},"node":"node-a"},'
        '"dst":{"ip":"10.244.%d.%d","port":8080,"kind":"pod","namespace":"ns-%d","pod":"api-%d-5c6b-%05d","uid":"v-%d","workload":"Deployment/api-%d","labels":{"app":"api-%d"},"node":"node-a"},'
        '"initiator":"observed","verdict":"%s","egress":{"isolated":false,"allowed":true,"policies":[]},"ingress":{"isolated":true,"allowed":%s,"policies":["ns-%d/%s"]},'
        '"packets":{"sent":%d,"received":%d},"bytes":{"sent":%d,"received":%d},"tcp_flags":["SYN","ACK"],"first_seen":"2026-11-26T00:00:00.000000Z","last_seen":"2026-11-26T00:00:01.000000Z"}\n')
written = 0; i = 0; fileno = 0; per_file = 100 << 20
f = None; fw = 0
while written < total:
    if f is None or fw >= per_file:
        if f: f.close()
        name = "tripline-flows-20261126T%02d0000.000000Z.log" % fileno if written + per_file < total else "tripline-flows.log"
        f = open(os.path.join(out, name), "w", buffering=1 << 20); fw = 0; fileno += 1
    buf = []
    for _ in range(2000):
        s = i % 86400; deny = (i % 97 == 0)
        a = i % 40; b = (i * 7) % 40
        line = tmpl % (s // 3600, s // 60 % 60, s % 60, i % 1000000, "start" if i % 2 == 0 else "end", i, i % 50, a, i % 250, 30000 + i % 30000, a, a, i % 99999, i, a, a,
                       b, i % 250, b, b, i % 99999, i, b, b, "deny" if deny else "allow", "false" if deny else "true", b, "default-deny" if deny else "allow-app",
                       i % 100, i % 90, i % 100000, i % 80000)
        buf.append(line); i += 1
    chunk = "".join(buf); f.write(chunk); fw += len(chunk); written += len(chunk)
f.close()
print(i, "records", written, "bytes")
