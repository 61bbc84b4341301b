# Writes a synthetic cluster of 50 nodes (manifests) and a flow log of about SIZE_MIB of its traffic, as the agents of
# its nodes would write it: 20 namespaces of 20 Deployments of 2 pods (800 pods), half the namespaces with a default
# deny and a rule admitting their own namespace on 8080, traffic between random workloads on 8080, 9090 and 5432,
# each workload calling four others (three of its namespace, one elsewhere) and one flow in twenty an outside address,
# start and end records, denied where the policies deny.
# Usage: python3 generate-cluster.py MANIFESTS_DIR LOG_FILE SIZE_MIB
import os, random, sys
out, log_path, size = sys.argv[1], sys.argv[2], int(sys.argv[3]) << 20
random.seed(21)
os.makedirs(out, exist_ok=True)
NODES, NAMESPACES, WORKLOADS = 50, 20, 20
pods = []
with open(os.path.join(out, "cluster.yaml"), "w") as m:
    for n in range(NODES):
        m.write(f"apiVersion: v1\nkind: Node\nmetadata: {{name: node-{n:02d}}}\nstatus: {{addresses: [{{type: InternalIP, address: 192.168.0.{n + 10}}}]}}\n---\n")
    for ns in range(NAMESPACES):
        m.write(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{ns:02d}, labels: {{kubernetes.io/metadata.name: ns-{ns:02d}}}}}\n---\n")
        if ns % 2 == 0:
            m.write(f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: default-deny, namespace: ns-{ns:02d}}}\nspec: {{podSelector: {{}}, policyTypes: [Ingress]}}\n---\n")
            m.write(f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: same-namespace, namespace: ns-{ns:02d}}}\n"
                    f"spec:\n  podSelector: {{}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{{podSelector: {{}}}}]\n    ports: [{{port: 8080, protocol: TCP}}]\n---\n")
        for w in range(WORKLOADS):
            for p in range(2):
                i = len(pods)
                node = i % NODES
                ip = f"10.{node + 1}.{i // 250}.{i % 250 + 1}"
                name = f"app-{w:02d}-7d9f{w:02d}-{p:05d}"
                pods.append((f"ns-{ns:02d}", name, f"app-{w:02d}", ip, f"node-{node:02d}", ns))
                m.write(f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: ns-{ns:02d}\n  uid: u-{i}\n"
                        f"  labels: {{app: app-{w:02d}, pod-template-hash: 7d9f{w:02d}}}\n"
                        f"  ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: app-{w:02d}-7d9f{w:02d}, uid: rs-{ns}-{w}, controller: true}}]\n"
                        f"spec: {{nodeName: node-{node:02d}, containers: [{{name: app, image: app, ports: [{{containerPort: 8080, protocol: TCP}}, {{containerPort: 9090, protocol: TCP}}]}}]}}\n"
                        f"status: {{phase: Running, podIP: {ip}}}\n---\n")

peers = {}
for wl in range(len(pods) // 2):
    ns = wl // WORKLOADS
    same = [ns * WORKLOADS + k for k in random.sample(range(WORKLOADS), 4) if ns * WORKLOADS + k != wl][:3]
    peers[wl] = same + [random.randrange(len(pods) // 2)]

def end(pod, port):
    ns, name, app, ip, node, _ = pod
    return (f'{{"ip":"{ip}","port":{port},"kind":"pod","namespace":"{ns}","pod":"{name}","uid":"u-{name}","workload":"Deployment/{app}",'
            f'"labels":{{"app":"{app}","pod-template-hash":"{name.split("-")[2]}"}},"node":"{node}"}}')

written, i = 0, 0
with open(log_path, "w", buffering=1 << 20) as f:
    while written < size:
        buf = []
        for _ in range(2000):
            s = i * 86400 // 4_000_000 % 86400
            t = "2026-11-26T%02d:%02d:%02d.%06dZ" % (s // 3600, s // 60 % 60, s % 60, i % 1000000)
            ai = random.randrange(len(pods))
            a = pods[ai]
            if random.random() < 0.05:
                dst = '{"ip":"203.0.113.%d","port":443,"kind":"external"}' % random.randint(1, 200)
                deny, ingress, port = False, "null", 443
            else:
                b = pods[random.choice(peers[ai // 2]) * 2 + random.randrange(2)]
                port = random.choice([8080, 8080, 9090, 5432])
                isolated = b[5] % 2 == 0
                deny = isolated and not (port == 8080 and a[0] == b[0])
                dst = end(b, port)
                ingress = ('{"isolated":%s,"allowed":%s,"policies":[%s]}' % ("true" if isolated else "false", "false" if deny else "true",
                           ('"%s/default-deny","%s/same-namespace"' % (b[0], b[0])) if deny else ('"%s/same-namespace"' % b[0] if isolated else "")))
            for event in ("start", "end"):
                buf.append(f'{{"time":"{t}","event":"{event}","flow_id":"{i:016x}","node":"{a[4]}","interface":"cali{i % 65536:04x}","protocol":"TCP",'
                           f'"src":{end(a, 30000 + i % 30000)},"dst":{dst},"initiator":"observed","verdict":"{"deny" if deny else "allow"}",'
                           f'"egress":{{"isolated":false,"allowed":true,"policies":[]}},"ingress":{ingress},'
                           f'"enforcement":"{("not_enforced" if i % 3 else "enforced") if deny else "delivered"}",'
                           f'"packets":{{"sent":5,"received":4}},"bytes":{{"sent":800,"received":1200}},"tcp_flags":["SYN","ACK","FIN"],'
                           + ('"end_reason":"fin",' if event == "end" else "") +
                           f'"first_seen":"{t}","last_seen":"{t}"}}\n')
            i += 1
        chunk = "".join(buf)
        f.write(chunk)
        written += len(chunk)
print(f"{len(pods)} pods on {NODES} nodes, {i} flows, {written} bytes")
