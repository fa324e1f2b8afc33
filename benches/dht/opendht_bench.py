#!/usr/bin/python3
"""The OpenDHT side of `cargo bench --bench dht` (Debian's python3-opendht).

  opendht_bench.py latency NODES OPS SEED BASEPORT
      NODES DhtRunners in this process on 127.0.0.1 (ports BASEPORT...),
      all bootstrapped from the first; then OPS times: put a fresh 64-byte
      value from a random node, get it from another random node (each call
      blocks until OpenDHT reports it done). Prints one JSON line:
      {"put_us": [...], "get_us": [...], "found": n}.
  opendht_bench.py fill BOOTSTRAP_PORT OPS PORT
      One runner joins the dhtnode ring at 127.0.0.1:BOOTSTRAP_PORT and puts
      OPS values into it; prints {"ok": n}.
"""
import json
import random
import sys
import time

import opendht as dht


def value(i):
    return ("v%06d" % i).ljust(64, "x").encode()


def latency(nodes, ops, seed, base):
    runners = []
    for i in range(nodes):
        r = dht.DhtRunner()
        r.run(port=base + i)
        if i:
            r.bootstrap("127.0.0.1", str(base))
        runners.append(r)
    # Let every node fill its routing table (as the peerlet ring converges
    # before its figures are taken).
    time.sleep(5)
    rng = random.Random(seed)
    puts, gets, found = [], [], 0
    for i in range(ops):
        key = dht.InfoHash.get("bench-%d-%d" % (seed, i))
        a = rng.randrange(nodes)
        b = (a + 1 + rng.randrange(nodes - 1)) % nodes
        t = time.perf_counter()
        runners[a].put(key, dht.Value(value(i)))
        puts.append((time.perf_counter() - t) * 1e6)
        t = time.perf_counter()
        got = runners[b].get(key)
        gets.append((time.perf_counter() - t) * 1e6)
        if any(v.data == value(i) for v in got):
            found += 1
    print(json.dumps({"put_us": puts, "get_us": gets, "found": found}), flush=True)
    for r in runners:
        r.join()


def fill(boot, ops, port):
    r = dht.DhtRunner()
    r.run(port=port)
    r.bootstrap("127.0.0.1", str(boot))
    time.sleep(3)
    ok = 0
    for i in range(ops):
        if r.put(dht.InfoHash.get("fill-%d" % i), dht.Value(value(i))):
            ok += 1
    print(json.dumps({"ok": ok}), flush=True)
    r.join()


if __name__ == "__main__":
    if sys.argv[1] == "latency":
        latency(*map(int, sys.argv[2:6]))
    else:
        fill(*map(int, sys.argv[2:5]))
