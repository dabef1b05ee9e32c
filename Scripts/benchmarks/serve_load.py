"""Load benchmark of `detr serve` against the same detector served by transformers behind a minimal
Python HTTP server (the baseline a user would write: http.server's ThreadingHTTPServer, one model,
a lock around each forward pass, DetrImageProcessor before it and its post-processing after).

Usage (Scripts/benchmarks/serve-load.sh runs it):
  python serve_load.py --detr .build/release/detr [--models small,r50] [--levels 1,4,16] [--requests 24]
  python serve_load.py --baseline-server FOLDER --port P --size S --max-size M   (the baseline, run by the first form)

Both sides get the same transformers DetrForObjectDetection folder (random weights, seeded), the
same JPEG (640x480), the same resize (shorter side --size, longer at most --max-size), 2 threads.
For each concurrency level the client keeps that many requests in flight until --requests have
been answered, alternating three servers for --rounds rounds: detr serve with --max-batch, detr
serve with --max-batch 1 (no batching), and the baseline. It prints throughput (answers per second)
and p50/p99 latency, the median over rounds, and the ratio of ours (batched) to the baseline.

--soak SECONDS instead keeps 4 clients busy on the first model for that long and samples the
server's resident memory every 10 s: the first, largest and last sample, and the number served.
"""
import argparse
import http.client
import http.server
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def make_model(kind, folder):
    import torch
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig
    torch.manual_seed(0)
    labels = {i: f"class{i}" for i in range(91 if kind == "r50" else 6)}
    if kind == "r50":
        backbone = ResNetConfig(out_features=["stage4"])  # ResNet-50
        config = DetrConfig(use_timm_backbone=False, backbone_config=backbone, num_queries=100, id2label=labels,
                            label2id={v: k for k, v in labels.items()})
    else:  # swift-detr's small DETR: ResNet-18, 128 wide, 3 + 3 layers, 50 queries
        backbone = ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2], layer_type="basic",
                                out_features=["stage4"])
        config = DetrConfig(use_timm_backbone=False, backbone_config=backbone, d_model=128, encoder_layers=3, decoder_layers=3,
                            encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=512, decoder_ffn_dim=512,
                            num_queries=50, id2label=labels, label2id={v: k for k, v in labels.items()})
    DetrForObjectDetection(config).eval().save_pretrained(folder)


def baseline_server(folder, port, size, max_size):
    import torch
    from PIL import Image
    from transformers import DetrForObjectDetection, DetrImageProcessor
    torch.set_num_threads(2)
    model = DetrForObjectDetection.from_pretrained(folder).eval()
    processor = DetrImageProcessor(size={"shortest_edge": size, "longest_edge": max_size})
    lock = threading.Lock()
    names = model.config.id2label

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.answer(200, b'{"status":"ok"}')

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            image = Image.open(io.BytesIO(body)).convert("RGB")
            with lock, torch.inference_mode():
                inputs = processor(images=image, return_tensors="pt")
                outputs = model(**inputs)
                found = processor.post_process_object_detection(outputs, threshold=0.5, target_sizes=[(image.height, image.width)])[0]
            detections = [{"category_id": int(l), "category_name": names[int(l)], "score": float(s), "box": [float(v) for v in b]}
                          for s, l, b in zip(found["scores"], found["labels"], found["boxes"])]
            self.answer(200, json.dumps({"detections": detections}).encode())

        def answer(self, status, data):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


def wait_until(port, path, deadline=180):
    end = time.time() + deadline
    while time.time() < end:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not answer {path} within {deadline} s")


def load(port, image, clients, requests_per_client):
    """Answers per second and latencies (s) with `clients` requests in flight."""
    latencies, errors = [], []
    lock = threading.Lock()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for _ in range(requests_per_client):
            started = time.perf_counter()
            connection.request("POST", "/v1/detect", body=image, headers={"Content-Type": "image/jpeg"})
            response = connection.getresponse()
            response.read()
            with lock:
                (latencies if response.status == 200 else errors).append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed on port {port}")
    latencies.sort()
    return len(latencies) / elapsed, latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--detr")
    parser.add_argument("--models", default="small,r50")
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--requests", type=int, default=24, help="answers per level (split over the clients)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument("--baseline-server")
    parser.add_argument("--port", type=int)
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--max-size", type=int, default=640)
    parser.add_argument("--soak", type=int, help="seconds of steady load on detr serve, sampling its memory")
    args = parser.parse_args()
    if args.baseline_server:
        return baseline_server(args.baseline_server, args.port, args.size, args.max_size)

    from PIL import Image, ImageDraw
    picture = Image.new("RGB", (640, 480), (120, 110, 100))
    draw = ImageDraw.Draw(picture)
    for i in range(6):
        draw.ellipse([40 + i * 95, 60 + (i % 3) * 110, 120 + i * 95, 160 + (i % 3) * 110], fill=(30 * i, 200 - 20 * i, 90))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    image = buffer.getvalue()
    import torch
    print(f"machine: {os.cpu_count()} cores; torch {torch.__version__}; image 640x480 JPEG resized to {args.size}/{args.max_size}; "
          f"detr serve --max-batch {args.max_batch}; {args.requests} answers per level, {args.rounds} alternating rounds (medians)")
    def start_ours(folder, port, max_batch):
        return subprocess.Popen([args.detr, "serve", "--weights", folder, "--port", str(port), "--size", str(args.size),
                                 "--max-size", str(args.max_size), "--max-batch", str(max_batch), "--max-delay-ms", "5",
                                 "--timeout", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    if args.soak:
        kind = args.models.split(",")[0]
        with tempfile.TemporaryDirectory() as scratch:
            folder = os.path.join(scratch, kind)
            make_model(kind, folder)
            port = free_port()
            server = start_ours(folder, port, args.max_batch)
            try:
                wait_until(port, "/readyz")
                samples, served, stop = [], [0], time.time() + args.soak

                def rss():
                    with open(f"/proc/{server.pid}/status") as status:
                        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

                def steady():
                    while time.time() < stop:
                        load(port, image, 4, 1)
                        served[0] += 4

                worker = threading.Thread(target=steady)
                worker.start()
                while time.time() < stop:
                    samples.append(rss())
                    time.sleep(10)
                worker.join()
                samples.append(rss())
                print(f"soak: {kind}, 4 clients, {args.soak} s, {served[0]} answers; resident memory MiB first {samples[0]}, "
                      f"largest {max(samples)}, last {samples[-1]} ({len(samples)} samples: {samples})")
            finally:
                server.terminate()
                server.wait()
        return

    print(f"{'model':6} {'clients':>7} | {'ours ans/s':>10} {'p50 ms':>8} {'p99 ms':>8} | {'unbatched':>9} {'p50 ms':>8} {'p99 ms':>8} | "
          f"{'base ans/s':>10} {'p50 ms':>8} {'p99 ms':>8} | {'ours/base':>9}")
    for kind in args.models.split(","):
        with tempfile.TemporaryDirectory() as scratch:
            folder = os.path.join(scratch, kind)
            make_model(kind, folder)
            ports = {"ours": free_port(), "unbatched": free_port(), "base": free_port()}
            servers = [start_ours(folder, ports["ours"], args.max_batch), start_ours(folder, ports["unbatched"], 1),
                       subprocess.Popen([sys.executable, __file__, "--baseline-server", folder, "--port", str(ports["base"]),
                                         "--size", str(args.size), "--max-size", str(args.max_size)], stdout=subprocess.DEVNULL)]
            try:
                wait_until(ports["ours"], "/readyz")
                wait_until(ports["unbatched"], "/readyz")
                wait_until(ports["base"], "/")
                load(ports["base"], image, 1, 1)  # the baseline's warm-up
                for clients in [int(level) for level in args.levels.split(",")]:
                    per_client = max(1, args.requests // clients)
                    rows = {name: [] for name in ports}
                    for _ in range(args.rounds):
                        for name, port in ports.items():
                            rows[name].append(load(port, image, clients, per_client))
                    medians = {name: [statistics.median(values) for values in zip(*rows[name])] for name in ports}
                    cells = " | ".join(f"{m[0]:10.2f} {m[1] * 1000:8.0f} {m[2] * 1000:8.0f}" for m in medians.values())
                    print(f"{kind:6} {clients:>7} | {cells} | {medians['ours'][0] / medians['base'][0]:9.2f}", flush=True)
            finally:
                for process in servers:
                    process.terminate()
                    process.wait()


if __name__ == "__main__":
    main()
