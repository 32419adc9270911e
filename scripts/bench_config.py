"""Configuration load time: a generated 5,000-line httpd.conf with 500 SSL vhosts (9 lines each,
the rest AddType lines).

Prints, as Markdown: httpd_py.config.load() in-process (first load in a fresh process, which
builds the lark parser, and the median of warm loads), load()+check() (certificate checks), and
`-t` as a whole command for httpd-py and Apache httpd (median of runs, process start included).
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from httpd_py.devtools import pki  # noqa: E402

RUNS = int(os.environ.get("BENCH_CONFIG_RUNS", "15"))
VHOSTS = 500
LINES = 5000
MODS = "/usr/lib/apache2/modules"


def generate(root: Path) -> Path:
    pki.make_pki(root / "pki", ("a.test",), kinds=("rsa",))
    (root / "logs").mkdir()
    head = [f"ServerRoot {root}",
            f"LoadModule mpm_prefork_module {MODS}/mod_mpm_prefork.so",
            f"LoadModule ssl_module {MODS}/mod_ssl.so",
            f"LoadModule socache_shmcb_module {MODS}/mod_socache_shmcb.so",
            f"LoadModule mime_module {MODS}/mod_mime.so",
            f"LoadModule log_config_module {MODS}/mod_log_config.so",
            "ServerName main.test", f"ErrorLog {root}/logs/error.log",
            f"PidFile {root}/logs/httpd.pid", f"Mutex file:{root}/logs default",
            "Listen 127.0.0.1:18443",
            "SSLStaplingCache shmcb:logs/stapling(512000)",
            'LogFormat "%h %l %u %t \\"%r\\" %>s %b" common']
    head = [h for h in head if "log_config" not in h]   # static in Debian's apache2
    vhost = ["<VirtualHost *:18443>", "    ServerName v{i}.test", "    ServerAlias www.v{i}.test",
             "    SSLEngine on",
             "    SSLCertificateFile pki/a.test-rsa.pem",
             "    SSLCertificateKeyFile pki/a.test-rsa.key", "    SSLUseStapling on",
             "    CustomLog logs/v{i}.log common", "</VirtualHost>"]
    body = [line.format(i=i) for i in range(VHOSTS) for line in vhost]
    filler = [f"AddType application/x-f{k} .f{k}" for k in range(LINES - len(head) - len(body))]
    text = "\n".join(head + filler + body) + "\n"
    assert text.count("\n") == LINES
    conf = root / "httpd.conf"
    conf.write_text(text)
    return conf


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms"


def time_cmd(cmd: list[str]) -> list[float]:
    out = []
    for _ in range(RUNS):
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        out.append(time.perf_counter() - t)
        if p.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {p.stderr}")
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        conf = generate(root)
        cold = subprocess.run(
            [sys.executable, "-c",
             "import time,sys; t=time.perf_counter(); from httpd_py.config import load; "
             f"load({str(conf)!r}, log_warnings=False); print(time.perf_counter()-t)"],
            capture_output=True, text=True, cwd=ROOT, check=True)
        from httpd_py.config import check, load
        load(str(conf), log_warnings=False)
        warm, checked = [], []
        for _ in range(RUNS):
            t = time.perf_counter()
            cfg = load(str(conf), log_warnings=False)
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()
            check(cfg)
            checked.append(time.perf_counter() - t)
        assert len(cfg.vhosts) == VHOSTS
        ours = time_cmd([sys.executable, "-m", "httpd_py", "-f", str(conf), "-t"])
        apache = shutil.which("apache2") or "/usr/sbin/apache2"
        theirs = time_cmd([apache, "-d", str(root), "-f", str(conf), "-t"]) \
            if os.path.exists(apache) else None
    print(f"{LINES}-line httpd.conf, {VHOSTS} SSL vhosts; medians of {RUNS} runs\n")
    print("| measure | time |")
    print("|---|---|")
    print(f"| load(), first in a fresh process (imports + lark grammar build) | "
          f"{float(cold.stdout) * 1000:.0f} ms |")
    print(f"| load(), warm | {median_ms(warm)} |")
    print(f"| check() (500 cert/key pairs, cached per file pair) | {median_ms(checked)} |")
    print(f"| `httpd-py -t` whole command (Python start, load, check) | {median_ms(ours)} |")
    if theirs:
        print(f"| `apache2 -t` whole command | {median_ms(theirs)} |")


if __name__ == "__main__":
    main()
