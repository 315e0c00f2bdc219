"""Load test of the live app on loopback: predictions while explanations run.

    python benchmarks/app_load.py --run hybrid_superdiagnostic \\
        [--results results] [--configfile config.yaml tests/config/synthetic.yaml] \\
        [--clients 16] [--predictions 50] [--explains 4] [--client httpx|raw] [--record PATH.hea] [--hostile]

Starts `ecgxai serve` (python -m ptbxl_xai.cli serve) on 127.0.0.1 as its own process, waits for it
(the warm-up explains one record first), then measures, with an upload of one WFDB record:

  1. one explanation alone (SHAP + LIME of the top label), 3 times      target <= 1 s
  2. --clients concurrent clients x --predictions predictions each, nothing else running
  1b. one counterfactual alone (api/counterfactual of the top label), 3 times  target <= 1 s
  3. the same predictions while --explains clients keep explaining       target predict p99 <= 100 ms
  3b. the same while --explains clients keep asking for counterfactuals  target predict p99 <= 100 ms

  4. with --hostile: --clients well-behaved prediction clients while the server is attacked by
     connections that never finish their headers, uploads that stall mid-body, explanations whose
     clients leave after 0.5 s, and bursts of concurrent predictions             target p99 <= 100 ms,
     no well-behaved request failing; then one explanation (not held up by the abandoned ones)

and prints p50/p99 latency (client side, including HTTP and the upload), errors, and the server's
RSS before and after, and the CPU time per prediction of the server, its workers and the load
generator. The load generator runs on the same machine (one asyncio process: httpx, or with
`--client raw` plain keep-alive HTTP/1.1 streams), so it takes part of the CPU the server would
have; the machine's load average is printed before and after, since other work on it changes
every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_record(configfiles, results: Path) -> Path:
    """The 100 Hz WFDB record of the run's first test record, in the PTB-XL folder the config names."""
    sys.path.insert(0, str(REPO))
    import pyarrow.parquet as pq

    from ptbxl_xai.app.settings import load_config
    from ptbxl_xai.data.parquet_io import part_files

    cfg = load_config(configfiles)
    rate = cfg["preprocess"]["sampling_rate"]
    ids = pq.read_table(part_files(results / "data" / f"{rate}hz", [10])[0], columns=["ecg_id"]).column(0)
    root = Path(cfg["data"]["path"])
    db = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")
    column = "filename_lr" if rate == 100 else "filename_hr"
    return root / (db.loc[int(ids[0].as_py()), column] + ".hea")


def percentiles(ms: list[float]) -> str:
    if not ms:
        return "no requests"
    a = np.asarray(ms)
    return f"n={len(a)} p50={np.percentile(a, 50):.1f} ms p99={np.percentile(a, 99):.1f} ms max={a.max():.1f} ms"


def encoded(files: dict, data: dict) -> tuple[bytes, dict]:
    """The multipart body and its header, built once: the clients share the 2 cores with the server, so
    they should not re-encode the same upload for every request (httpx's encoder costs ~1 ms each)."""
    req = httpx.Request("POST", "http://127.0.0.1/", files=files, data=data)
    return req.read(), {"content-type": req.headers["content-type"]}


async def timed_post(client: httpx.AsyncClient, path: str, files: dict, data: dict, out: list, errors: list):
    body, headers = encoded(files, data)
    return await timed_send(client, path, body, headers, out, errors)


async def timed_send(client: httpx.AsyncClient, path: str, body: bytes, headers: dict, out: list, errors: list):
    start = time.perf_counter()
    try:
        res = await client.post(path, content=body, headers=headers)
        ms = (time.perf_counter() - start) * 1000
        if res.status_code != 200:
            errors.append(f"{path}: HTTP {res.status_code} {res.text[:200]}")
        else:
            out.append(ms)
        return res
    except httpx.HTTPError as exc:
        errors.append(f"{path}: {type(exc).__name__}: {exc}")


async def raw_predict_clients(url, files, clients, n, out, errors):
    """The same requests over plain asyncio streams: one keep-alive HTTP/1.1 connection per client,
    the request bytes built once, the answer read by its Content-Length. About a tenth of httpx's CPU
    per request, so the load generator takes less of the 2 cores the server runs on (as wrk would)."""
    body, headers = encoded(files, {})
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: {headers['content-type']}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body

    async def one_client():
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for _ in range(n):
                start = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                length = next(
                    int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length"
                )
                answer = await reader.readexactly(length)
                if status != 200:
                    errors.append(f"/api/predict: HTTP {status} {answer[:200]!r}")
                else:
                    out.append((time.perf_counter() - start) * 1000)
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
            errors.append(f"/api/predict: {type(exc).__name__}: {exc}")
        finally:
            writer.close()

    await asyncio.gather(*(one_client() for _ in range(clients)))


async def predict_clients(url, files, clients, n, out, errors):
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=httpx.Limits(max_connections=clients + 8)) as c:
        body, headers = encoded(files, {})

        async def one_client():
            for _ in range(n):
                await timed_send(c, "/api/predict", body, headers, out, errors)

        await asyncio.gather(*(one_client() for _ in range(clients)))


async def explain_clients(url, files, label, clients, stop: asyncio.Event, out, errors, server_s, path="/api/explain"):
    async with httpx.AsyncClient(base_url=url, timeout=600) as c:

        async def one_client():
            while not stop.is_set():
                res = await timed_post(c, path, files, {"label": label}, out, errors)
                if res is not None and res.status_code == 200:
                    server_s.append(res.json()["seconds"])

        await asyncio.gather(*(one_client() for _ in range(clients)))


async def run_phase(url, files, label, clients, n, explains, client="httpx", path="/api/explain"):
    pred, errors, expl, expl_errors, server_s = [], [], [], [], []
    stop = asyncio.Event()
    explainers = asyncio.create_task(
        explain_clients(url, files, label, explains, stop, expl, expl_errors, server_s, path)
    )
    if explains:
        await asyncio.sleep(0.5)  # the explanations are under way before the predictions start
    start = time.perf_counter()
    await (raw_predict_clients if client == "raw" else predict_clients)(url, files, clients, n, pred, errors)
    wall = time.perf_counter() - start
    stop.set()
    await explainers  # the explanations in flight finish
    return pred, errors, wall, expl, expl_errors, server_s


# attackers: 50 of serve.max_connections (64), so that the well-behaved clients (at most 14) still get in
HOSTILE = dict(held_headers=24, held_uploads=8, abandoned_explains=2, burst=16)


async def hostile_phase(url, files, label, clients, n, counts: dict) -> tuple[list, list]:
    """Well-behaved raw keep-alive predictions while attackers hold connections and abandon work (HOSTILE)."""
    host, port = url.removeprefix("http://").split(":")
    stop = asyncio.Event()

    def count(key):
        counts[key] = counts.get(key, 0) + 1

    async def answer_of(reader) -> str:
        head = await reader.read(200)
        return head.split(b"\r\n", 1)[0].decode("latin-1", "replace") or "closed"

    async def held_headers():  # slowloris: a header line a second, never the blank line that ends them
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\n".encode())
                while not stop.is_set():
                    try:
                        count(f"held headers -> {await asyncio.wait_for(answer_of(reader), 1.0)}")
                        break
                    except asyncio.TimeoutError:
                        writer.write(b"X-Slow: 1\r\n")
                writer.close()
            except OSError as exc:
                count(f"held headers -> {type(exc).__name__}")
                await asyncio.sleep(0.5)

    async def held_uploads():  # a 15 MB upload that stops after 1 MB
        body, headers = encoded(files, {})
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write((f"POST /api/predict HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: "
                              f"{headers['content-type']}\r\ncontent-length: {15 * 2**20}\r\n\r\n").encode())  # fmt: skip
                writer.write(body + b"\0" * (2**20 - len(body)))
                while not stop.is_set():
                    try:
                        count(f"held upload -> {await asyncio.wait_for(answer_of(reader), 1.0)}")
                        break
                    except asyncio.TimeoutError:
                        pass
                writer.close()
            except OSError as exc:
                count(f"held upload -> {type(exc).__name__}")
                await asyncio.sleep(0.5)

    async def abandoned_explains():
        body, headers = encoded(files, {"label": label})
        async with httpx.AsyncClient(base_url=url, timeout=0.5) as c:
            while not stop.is_set():
                try:
                    res = await c.post("/api/explain", content=body, headers=headers)
                    count(f"abandoned explain -> HTTP {res.status_code}")
                except httpx.TimeoutException:
                    count("abandoned explain -> left after 0.5 s")
                except httpx.HTTPError as exc:
                    count(f"abandoned explain -> {type(exc).__name__}")

    async def bursts():
        body, headers = encoded(files, {})
        async with httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=HOSTILE["burst"])
        ) as c:

            async def one():
                try:
                    res = await c.post("/api/predict", content=body, headers=headers)
                    count(f"burst predict -> HTTP {res.status_code}")
                except httpx.HTTPError as exc:
                    count(f"burst predict -> {type(exc).__name__}")

            while not stop.is_set():
                await asyncio.gather(*(one() for _ in range(HOSTILE["burst"])))
                await asyncio.sleep(2.0)

    attackers = [asyncio.create_task(held_headers()) for _ in range(HOSTILE["held_headers"])]
    attackers += [asyncio.create_task(held_uploads()) for _ in range(HOSTILE["held_uploads"])]
    attackers += [asyncio.create_task(abandoned_explains()) for _ in range(HOSTILE["abandoned_explains"])]
    attackers.append(asyncio.create_task(bursts()))
    await asyncio.sleep(3.0)  # the attack is under way before the measured clients start
    pred, errors = [], []
    await raw_predict_clients(url, files, clients, n, pred, errors)
    stop.set()
    await asyncio.gather(*attackers)
    return pred, errors


def rss_mb(proc: psutil.Process) -> float:
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--results", default="results", type=Path)
    ap.add_argument("--configfile", nargs="+", default=["config.yaml"])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--predictions", type=int, default=50, help="per client")
    ap.add_argument("--explains", type=int, default=4, help="concurrent explain clients during phase 3")
    ap.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="load generator of the predictions: httpx, or raw keep-alive HTTP/1.1 on asyncio streams (less CPU)",
    )
    ap.add_argument("--record", type=Path, help="WFDB header to upload (default: the run's first test record)")
    ap.add_argument("--hostile", action="store_true", help="also phase 4: well-behaved clients during an attack")
    args = ap.parse_args()

    hea = args.record or default_record(args.configfile, args.results)
    files = {
        "hea": (hea.name, hea.read_bytes()),
        "dat": (hea.with_suffix(".dat").name, hea.with_suffix(".dat").read_bytes()),
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (1 min) before the server starts")
    cmd = [sys.executable, "-m", "ptbxl_xai.cli", "serve", "--run", args.run, "--results", str(args.results),
           "--port", str(port), "--configfile", *args.configfile]  # fmt: skip
    started = time.perf_counter()
    log_path = REPO / "benchmarks" / "out" / "app_server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("w")
    server = subprocess.Popen(cmd, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    print(f"server log: {log_path}")
    try:
        live = None
        while True:  # live: /api/health answers (status starting); ready: the workers are loaded and warm
            if server.poll() is not None:
                print(log_path.read_text()[-3000:])
                return 1
            try:
                health = httpx.get(f"{url}/api/health", timeout=2).json()
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            live = live or time.perf_counter() - started
            if health["status"] != "starting":
                break
            time.sleep(0.2)
        if health["status"] != "ready":
            print(f"start-up failed: {health.get('error')}\n{log_path.read_text()[-3000:]}")
            return 1
        proc = psutil.Process(server.pid)
        print(
            f"server: run {health['run']} ({len(health['labels'])} labels, {health['label_set']}), "
            f"{health['feature_space']} features; start-up: live (health answers) after {live:.1f} s, ready after "
            f"{time.perf_counter() - started:.1f} s (workers load the run and warm up; the server reports "
            f"{health['startup_seconds']:.1f} s), record {hea} uploaded as .hea + .dat "
            f"({sum(len(v[1]) for v in files.values())} bytes)"
        )
        top = max(httpx.post(f"{url}/api/predict", files=files).json()["labels"], key=lambda lab: lab["probability"])
        rss_before = rss_mb(proc)

        def cpu_by_process() -> dict[str, float]:  # CPU seconds of the server and its worker processes
            out = {"server": sum(proc.cpu_times()[:2])}
            for child in proc.children(recursive=True):  # workers: predictions at the server's nice, explanations above
                role = "explain workers" if child.nice() > proc.nice() else "predict worker"
                out[role] = out.get(role, 0.0) + sum(child.cpu_times()[:2])
            return out

        def cpu_s() -> float:  # the server's CPU time: what a request costs, whatever else the machine runs
            return sum(cpu_by_process().values())

        alone = []
        cpu0 = cpu_s()
        for _ in range(3):
            t = time.perf_counter()
            res = httpx.post(f"{url}/api/explain", files=files, data={"label": top["name"]}, timeout=600).json()
            alone.append(((time.perf_counter() - t) * 1000, res["seconds"] * 1000))
        print(
            f"1. one explanation alone (label {top['name']}, SHAP {res['shap']['n_model_calls']} + "
            f"LIME {res['lime']['n_model_calls']} model calls): "
            + ", ".join(f"{c:.0f} ms ({s:.0f} ms in the server)" for c, s in alone)
            + f"; median {np.median([c for c, _ in alone]):.0f} ms   target <= 1000 ms"
        )
        print(f"   server CPU time per explanation: {(cpu_s() - cpu0) / 3 * 1000:.0f} ms")
        # the most probable abnormal label: a counterfactual undoes an abnormal call (NORM has none)
        labels = httpx.post(f"{url}/api/predict", files=files).json()["labels"]
        abnormal = max((lab for lab in labels if lab["name"] != "NORM"), key=lambda lab: lab["probability"])["name"]
        alone = []
        for _ in range(3):
            t = time.perf_counter()
            res = httpx.post(f"{url}/api/counterfactual", files=files, data={"label": abnormal}, timeout=600).json()
            alone.append(((time.perf_counter() - t) * 1000, res["seconds"] * 1000))
        print(
            f"1b. one counterfactual alone (label {abnormal}: {res['segments']['sentence']}): "
            + ", ".join(f"{c:.0f} ms ({s:.0f} ms in the server)" for c, s in alone)
            + f"; median {np.median([c for c, _ in alone]):.0f} ms   target <= 1000 ms"
        )

        phases = (
            ("2. predictions alone", 0, "/api/explain"),
            ("3. predictions while explanations run", args.explains, "/api/explain"),
            ("3b. predictions while counterfactuals run", args.explains, "/api/counterfactual"),
        )
        for phase, explains, path in phases:
            split0, client0 = cpu_by_process(), time.process_time()
            cpu0 = sum(split0.values())
            pred, errors, wall, expl, expl_errors, server_s = asyncio.run(
                run_phase(
                    url,
                    files,
                    abnormal if "counterfactual" in path else top["name"],
                    args.clients,
                    args.predictions,
                    explains,
                    args.client,
                    path,
                )  # fmt: skip
            )
            split, client_cpu = cpu_by_process(), time.process_time() - client0
            cpu = sum(split.values()) - cpu0
            print(f"{phase}: {args.clients} clients x {args.predictions}: {percentiles(pred)}, "
                  f"{len(pred) / wall:.0f} predictions/s, errors {len(errors)}")  # fmt: skip
            if not explains:
                per = cpu / max(len(pred), 1) * 1000
                print(f"   server CPU time per prediction: {per:.1f} ms, i.e. {2000 / per:.0f} predictions/s on 2 idle "
                      f"cores; {args.clients} closed-loop clients would then wait about {args.clients * per / 2:.0f} "
                      "ms each (Little's law)")  # fmt: skip
                print("   of which " + ", ".join(f"{role} {(v - split0.get(role, 0.0)) / max(len(pred), 1) * 1000:.1f} ms"
                                             for role, v in split.items()))  # fmt: skip
                print(f"   load generator CPU time per prediction: {client_cpu / max(len(pred), 1) * 1000:.1f} ms "
                      "(on the same 2 cores as the server)")  # fmt: skip
            if explains:
                print(f"   {explains} {path} clients meanwhile: {percentiles(expl)} (queueing included; in the server "
                      f"median {np.median(server_s) * 1000 if server_s else float('nan'):.0f} ms), "
                      f"errors {len(expl_errors)}")  # fmt: skip
                print(f"   target: predict p99 <= 100 ms -> {np.percentile(pred, 99) if pred else float('nan'):.1f} ms")
            for e in (errors + expl_errors)[:5]:
                print("   error:", e)
        if args.hostile:
            if args.clients > 14:
                print(f"4. hostile: --clients {args.clients} plus 50 attackers exceed serve.max_connections; use <= 14")
                return 1
            counts: dict = {}
            pred, errors = asyncio.run(hostile_phase(url, files, top["name"], args.clients, args.predictions, counts))
            print(f"4. hostile: {HOSTILE} attackers; {args.clients} well-behaved clients x {args.predictions} "
                  f"raw keep-alive predictions: {percentiles(pred)}, errors {len(errors)}")  # fmt: skip
            print(f"   target: p99 <= 100 ms, no errors -> {np.percentile(pred, 99) if pred else float('nan'):.1f} ms, "
                  f"{len(errors)} errors")  # fmt: skip
            for key, value in sorted(counts.items()):
                print(f"   attack: {key}: {value}")
            for e in errors[:5]:
                print("   error:", e)
            t = time.perf_counter()
            after = httpx.post(f"{url}/api/explain", files=files, data={"label": top["name"]}, timeout=600)
            print(f"   one explanation after the attack: HTTP {after.status_code} in "
                  f"{(time.perf_counter() - t) * 1000:.0f} ms")  # fmt: skip
            print(f"   server RSS after the attack: {rss_mb(proc):.0f} MB (before any load {rss_before:.0f} MB)")
        print(f"server RSS: {rss_before:.0f} MB before the load, {rss_mb(proc):.0f} MB after")
        print(f"machine load average after: {os.getloadavg()[0]:.1f} (1 min)")
    finally:
        server.terminate()
        server.wait(30)
        log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
