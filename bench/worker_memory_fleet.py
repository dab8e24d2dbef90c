#!/usr/bin/env python3
"""Peak memory of a `fanpull run` worker process as the fleet grows.

For each fleet size N (default 100 then 1000): N merchants of F followers (default 20,000), all N
jobs queued at once, `wechat.max_in_flight` K (default 64). The broker (the embedded one,
`fanpull broker`, or with --broker kafka Apache Kafka from scripts/kafka-broker, its topics
created by `fanpull topics`) and the WeChat sandbox (`fanpull sandbox`, answers after
--latency-ms) run as their own processes, so the figures are the worker's alone: its resident
memory sampled every 50 ms (VmRSS) and the kernel's peak (VmHWM), from the first job to the last
completed one (read from the worker's /metrics). Prints one line per fleet, then the ratio of
the peaks, and how much the peak grows per merchant beside the answer buffers (their capacity,
read from fanpull_answer_buffers_kept_bytes once every page is delivered: bounded by
kafka.max_undelivered_bytes whatever the fleet, and as many as the run's answers bunched).

With --idle no job is queued: each fleet is a worker idle with N merchants in its tenants file,
and its resident memory (and the anonymous part of it, its heap) once it owns the jobs partitions
is printed, then what each merchant of the tenants file adds (reading a tenants file of ten
thousand merchants must not cost the worker more than the merchants it read).

With --timeline each fleet also prints, per 100 ms from its first walk, the walks begun, pages
delivered and walks completed (from the worker's log), the walks under way (whether walks run one
after the other or side by side) and the largest resident memory sampled: when the peak comes.

With --kafka-pause-ms P the broker's process is stopped for P ms once a tenth of the pages are
fetched, then let go: Kafka stalls as it does when a broker restarts or a leader moves. Each
fleet's answers then wait until the undelivered budget is full, which is the peak a worker serving
that fleet reaches sooner or later; without the stall a short run (100 merchants: 0.4 s) often ends
before its first delivery hiccup and a long one rarely does, so the ratio measures the runs'
lengths as much as the merchants (docs/BENCHMARKS.md, "Memory by fleet size").

With --runs R the fleets run R times, alternating, and the medians of the peaks and of the
ratios are printed last (the short fleet's peak moves from run to run with how many of its first
answers arrive together).

  bench/worker_memory_fleet.py [--binary build/fanpull] [--fleets 100,1000] [--followers 20000]
                               [--in-flight 64] [--latency-ms 20] [--runs 1] [--idle]
                               [--timeline] [--kafka-pause-ms 0] [--broker embedded|kafka]
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def first_line(proc):
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError("no address printed")
    return line


def metric(address, name, labels=""):
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    pattern = re.compile(r"^" + re.escape(name) + re.escape(labels) + r" (\S+)$", re.M)
    m = pattern.search(text)
    return float(m.group(1)) if m else 0.0


def timeline(log_path, rss_samples, step=0.1):
    """Lines of walks begun, pages delivered and walks completed per `step` seconds, and the
    largest resident memory sampled in each (`rss_samples`: (time, KB) pairs)."""
    events = []
    with open(log_path) as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") in ("job started", "page delivered", "job completed"):
                ts = datetime.datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
                events.append((ts.timestamp(), entry["msg"]))
    if not events:
        return []
    t0 = min(t for t, _ in events)
    slots = {}
    for t, msg in events:
        counts = slots.setdefault(int((t - t0) / step), {})
        counts[msg] = counts.get(msg, 0) + 1
    lines = []
    under_way = 0
    for slot in range(max(slots) + 1):
        counts = slots.get(slot, {})
        begun = counts.get("job started", 0)
        completed = counts.get("job completed", 0)
        under_way += begun - completed
        rss = [kb for t, kb in rss_samples if int((t - t0) / step) == slot]
        rss_text = f" RSS {max(rss) / 1024:5.1f} MB" if rss else ""
        lines.append(f"  {slot * step:5.1f} s: {begun:5d} begun {counts.get('page delivered', 0):5d} "
                     f"pages {completed:5d} completed {under_way:5d} under way{rss_text}")
    return lines


def pages_per_walk(followers):
    """getFans pages of a walk: one per 10,000 OpenIDs, and the empty last page when the last
    data page is full (docs/WECHAT.md)."""
    return followers // 10000 + 1


def broker_pids(broker, pid_file):
    """The processes that serve Kafka: the embedded broker, or Apache Kafka's brokers (the JVMs
    scripts/kafka-broker started; their PIDs in its --pid-file)."""
    if pid_file is None:
        return [broker.pid]
    with open(pid_file) as f:
        return [int(line.split()[1]) for line in f if line.strip()]


def run_fleet(binary, merchants, followers, in_flight, latency_ms, max_undelivered_mb,
              idle=False, with_timeline=False, kafka_pause_ms=0, kafka=False):
    work = tempfile.mkdtemp(prefix="fanpull-memory-fleet-")
    appids = [f"wxmem{n:013d}" for n in range(merchants)]
    accounts = {"accounts": [
        {"appid": a, "followers": followers, "func_info": [2], "access_tokens": [f"token-{a}"],
         "latency_ms": latency_ms} for a in appids]}
    with open(os.path.join(work, "accounts.json"), "w") as f:
        json.dump(accounts, f)
    with open(os.path.join(work, "tenants.json"), "w") as f:
        json.dump({"tenants": [{"appid": a, "authorizer_access_token": f"token-{a}",
                                "func_info": [2]} for a in appids]}, f)
    pid_file = None
    if kafka:
        # Apache Kafka (KRaft, one node, logs in RAM); it serves until its standard input closes.
        pid_file = os.path.join(work, "kafka.pids")
        broker = subprocess.Popen([os.path.join(ROOT, "scripts", "kafka-broker"), "--in-memory",
                                   "--pid-file", pid_file], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    else:
        broker = subprocess.Popen([binary, "broker", "--partitions", "4"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    sandbox = subprocess.Popen([binary, "sandbox", "--accounts",
                                os.path.join(work, "accounts.json")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    worker = None
    try:
        bootstrap = first_line(broker)
        base_url = first_line(sandbox)
        config = {
            "kafka": {"bootstrap_servers": bootstrap,
                      "properties": {"session.timeout.ms": "6000"}},
            "wechat": {"base_url": base_url, "max_in_flight": in_flight},
            "tenants_file": "tenants.json",
            "rate_limit": {"requests_per_second": 1000, "burst": 1000, "daily_calls": 0},
            "http": {"listen": "127.0.0.1:0"},
            "log": {"level": "info", "format": "json"},
        }
        if max_undelivered_mb:
            config["kafka"]["max_undelivered_bytes"] = max_undelivered_mb << 20
        with open(os.path.join(work, "worker.json"), "w") as f:
            json.dump(config, f)
        if kafka:
            subprocess.run([binary, "topics", "--config", "worker.json", "--partitions", "4"],
                           cwd=work, stdout=subprocess.DEVNULL, check=True)
        log_path = os.path.join(work, "worker.log")
        worker = subprocess.Popen([binary, "run", "--config", "worker.json"], cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
        address = None
        deadline = time.time() + 60
        while time.time() < deadline and address is None:
            with open(log_path) as f:
                m = re.search(r"metrics and health on http://(\S+?)\"", f.read())
            if m:
                address = m.group(1)
            time.sleep(0.05)
        if address is None:
            raise RuntimeError("the worker did not start: " + open(log_path).read()[-2000:])
        while metric(address, "fanpull_partitions_assigned") < 4:
            time.sleep(0.05)
        rss_idle = status_kb(worker.pid, "VmRSS")
        if idle:
            time.sleep(1)  # the tenants file is read at start; let the worker settle
            return {"merchants": merchants, "rss_idle_mb": status_kb(worker.pid, "VmRSS") / 1024,
                    "anon_idle_mb": status_kb(worker.pid, "RssAnon") / 1024}
        jobs = "".join(json.dumps({"job_id": f"j-{a}", "appid": a}) + "\n" for a in appids)
        t0 = time.time()
        subprocess.run([binary, "enqueue", "-b", bootstrap, "-"], input=jobs.encode(),
                       stdout=subprocess.DEVNULL, check=True)
        peak_sampled = 0
        completed = 0
        rss_samples = []
        paused_at_pages = None
        while completed < merchants:
            rss_samples.append((time.time(), status_kb(worker.pid, "VmRSS")))
            peak_sampled = max(peak_sampled, rss_samples[-1][1])
            completed = metric(address, "fanpull_jobs_ended_total", '{outcome="completed"}')
            if time.time() - t0 > 900:
                raise RuntimeError(f"timed out with {completed} of {merchants} completed")
            if kafka_pause_ms and paused_at_pages is None:
                # Kafka stalls once, a tenth of the way in (every walk of the short fleet still
                # under way): the broker's process is stopped, then let go.
                fetched = metric(address, "fanpull_pages_total")
                if fetched * 10 >= merchants * pages_per_walk(followers):
                    paused_at_pages = fetched
                    pids = broker_pids(broker, pid_file)
                    for pid in pids:
                        os.kill(pid, signal.SIGSTOP)
                    time.sleep(kafka_pause_ms / 1000)
                    for pid in pids:
                        os.kill(pid, signal.SIGCONT)
                else:
                    time.sleep(0.005)
                    continue
            time.sleep(0.05)
        seconds = time.time() - t0
        pages = metric(address, "fanpull_pages_total")
        buffers = metric(address, "fanpull_answer_buffers_allocated_total")
        budget_waits = metric(address, "fanpull_undelivered_budget_waits_total")
        # Once every page is delivered each answer buffer is back in the pool: their capacity.
        buffer_bytes = metric(address, "fanpull_answer_buffers_kept_bytes")
        hwm = status_kb(worker.pid, "VmHWM")
        walks = timeline(log_path, rss_samples) if with_timeline else []
        return {"merchants": merchants, "rss_idle_mb": rss_idle / 1024, "timeline": walks,
                "paused_at_pages": paused_at_pages,
                "peak_sampled_mb": peak_sampled / 1024, "vmhwm_mb": hwm / 1024,
                "seconds": seconds, "pages": pages, "buffers": buffers,
                "budget_waits": budget_waits,
                "buffers_mb": buffer_bytes / (1 << 20), "pages_per_second": pages / seconds}
    finally:
        for p in (worker, sandbox, broker):
            if p is not None:
                p.terminate()
        for p in (worker, sandbox, broker):
            if p is not None:
                try:
                    p.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="build/fanpull")
    parser.add_argument("--fleets", default="100,1000")
    parser.add_argument("--followers", type=int, default=20000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--max-undelivered-mb", type=int, default=0,
                        help="kafka.max_undelivered_bytes in MiB (0: the worker's default)")
    parser.add_argument("--idle", action="store_true",
                        help="no jobs: the idle worker's memory by the merchants in its tenants file")
    parser.add_argument("--timeline", action="store_true",
                        help="per 100 ms, the walks begun, pages delivered and walks completed")
    parser.add_argument("--broker", choices=["embedded", "kafka"], default="embedded",
                        help="the embedded broker (fanpull broker), or Apache Kafka started by "
                             "scripts/kafka-broker (scripts/install-kafka installs it)")
    parser.add_argument("--kafka-pause-ms", type=int, default=0,
                        help="stop the broker's process this long once a tenth of the pages "
                             "are fetched (0: no pause)")
    parser.add_argument("--runs", type=int, default=1,
                        help="how many times each fleet runs (alternating); medians at the end")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[0]}; broker: {args.broker}")
    fleets = [int(x) for x in args.fleets.split(",")]
    if args.idle:
        idle = {n: [] for n in fleets}
        for run in range(args.runs):
            for n in fleets:
                r = run_fleet(os.path.abspath(args.binary), n, args.followers, args.in_flight,
                              args.latency_ms, args.max_undelivered_mb, idle=True,
                              kafka=args.broker == "kafka")
                idle[n].append(r)
                print(f"{n:6d} merchants in the tenants file: worker idle RSS "
                      f"{r['rss_idle_mb']:.1f} MB, of which anonymous {r['anon_idle_mb']:.1f} MB",
                      flush=True)
        anon = {n: statistics.median(r["anon_idle_mb"] for r in idle[n]) for n in fleets}
        for a, b in zip(fleets, fleets[1:]):
            print(f"from {a} to {b} merchants: {(anon[b] - anon[a]) * 1024 / (b - a):.2f} KB of "
                  f"anonymous memory per merchant (medians of {args.runs} runs)")
        return 0
    peaks = {n: [] for n in fleets}
    ratios = []
    growth = []
    for run in range(args.runs):
        if args.runs > 1:
            print(f"run {run + 1} of {args.runs}:")
        results = []
        for n in fleets:
            r = run_fleet(os.path.abspath(args.binary), n, args.followers, args.in_flight,
                          args.latency_ms, args.max_undelivered_mb,
                          with_timeline=args.timeline, kafka_pause_ms=args.kafka_pause_ms,
                          kafka=args.broker == "kafka")
            results.append(r)
            peaks[n].append(r["vmhwm_mb"])
            print(f"{r['merchants']:6d} merchants x {args.followers} followers, {args.in_flight} in "
                  f"flight: worker RSS idle {r['rss_idle_mb']:.1f} MB, peak {r['vmhwm_mb']:.1f} MB "
                  f"(VmHWM; sampled {r['peak_sampled_mb']:.1f} MB), {r['pages']:.0f} pages in "
                  f"{r['seconds']:.1f} s ({r['pages_per_second']:.0f} pages/s), "
                  f"{r['buffers']:.0f} answer buffers allocated ({r['buffers_mb']:.1f} MB, "
                  f"peak less them {r['vmhwm_mb'] - r['buffers_mb']:.1f} MB), "
                  f"{r['budget_waits']:.0f} waits for the undelivered budget"
                  + (f", Kafka stopped {args.kafka_pause_ms} ms at {r['paused_at_pages']:.0f} pages"
                     if r["paused_at_pages"] is not None else ""), flush=True)
            for line in r["timeline"]:
                print(line, flush=True)
        if len(results) >= 2:
            first, last = results[0], results[-1]
            ratio = last["vmhwm_mb"] / first["vmhwm_mb"]
            ratios.append(ratio)
            # What grows with merchants, apart from the answer buffers (bounded by
            # kafka.max_undelivered_bytes whatever the fleet; how many a run allocates depends
            # on how its answers bunch together).
            per_merchant_kb = ((last["vmhwm_mb"] - last["buffers_mb"]) -
                               (first["vmhwm_mb"] - first["buffers_mb"])) * 1024 / max(
                                   1, last["merchants"] - first["merchants"])
            growth.append(per_merchant_kb)
            print(f"peak ratio {last['merchants']} / {first['merchants']} merchants: "
                  f"{ratio:.3f}; beside the answer buffers the peak grows by "
                  f"{per_merchant_kb:.1f} KB per merchant", flush=True)
    if args.runs > 1:
        for n in fleets:
            print(f"median peak, {n} merchants: {statistics.median(peaks[n]):.1f} MB "
                  f"({' / '.join(f'{p:.1f}' for p in peaks[n])})")
        if ratios:
            print(f"median peak ratio {fleets[-1]} / {fleets[0]} merchants: "
                  f"{statistics.median(ratios):.3f} ({' / '.join(f'{x:.3f}' for x in ratios)})")
            print(f"median growth beside the answer buffers: {statistics.median(growth):.1f} KB "
                  f"per merchant ({' / '.join(f'{x:.1f}' for x in growth)})")

if __name__ == "__main__":
    sys.exit(main())
