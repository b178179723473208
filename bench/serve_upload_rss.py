"""Peak RSS of `unified-prompt serve` while it receives one large upload.
usage: python rss_upload.py MB [PYTHONPATH-override]"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx

mb = int(sys.argv[1])
env = dict(os.environ)
if len(sys.argv) > 2:
    env["PYTHONPATH"] = sys.argv[2]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
data_dir = tempfile.mkdtemp(prefix="rss-serve-")
srv = subprocess.Popen(
    [
        sys.executable,
        "-m",
        "unified_prompt.cli",
        "serve",
        "--backend",
        "fake",
        "--model",
        "fake-tiny",
        "--port",
        str(port),
        "--data-dir",
        data_dir,
        "--log-level",
        "warning",
        *sys.argv[3:],
    ],
    env=env,
)


def hwm():
    with open(f"/proc/{srv.pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) // 1024
    return None


try:
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    idle = hwm()
    row = (
        json.dumps(
            {"messages": [{"role": "user", "content": "x" * 200}, {"role": "assistant", "content": "y"}]}
        )
        + "\n"
    ).encode()
    block = row * (1024 * 1024 // len(row) + 1)
    block = block[: 1024 * 1024]

    def body():
        yield (b'--XB\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
               b'--XB\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"'
               b"\r\n\r\n")
        for _ in range(mb):
            yield block
        yield b"\r\n--XB--\r\n"

    t = time.monotonic()
    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/files",
        content=body(),
        timeout=600,
        headers={"content-type": "multipart/form-data; boundary=XB"},
    )
    print(
        json.dumps(
            {
                "upload_mb": mb,
                "status": r.status_code,
                "bytes": r.json().get("bytes"),
                "server_peak_rss_mb_idle": idle,
                "server_peak_rss_mb": hwm(),
                "seconds": round(time.monotonic() - t, 1),
            }
        )
    )
finally:
    srv.terminate()
    srv.wait(10)
    subprocess.run(["rm", "-rf", data_dir])
