"""``scripts/bench report``: run the benchmarks and write docs/benchmarks-report.md with plots.

    scripts/bench report                          # scale (N = 10, 100, 1000 + responder load),
                                                  # handshakes and keep-alive; ~30 min
    .venv/bin/python scripts/bench_report.py --quick              # a short run to look at
    .venv/bin/python scripts/bench_report.py --from DIR           # plot results already run
    .venv/bin/python scripts/bench_report.py --scale-args "--n 10,100,1000,5000"

Runs ``bench_scale.py --fleet --json`` and ``bench_handshake.py`` (its Markdown tables are read
back), keeps their raw output and numbers under ``docs/img/bench/`` (``scale.md``, ``scale.json``,
``handshake.md``, ``results.json``: the machine and the parsed handshake tables) and draws, with matplotlib (the ``bench`` extra):

    handshake-cpu.png        server CPU per full handshake, per server, key type, status_request
    latency-cdf.png          client-side handshake latency CDFs (SNI over all N names)
    keepalive.png            keep-alive requests/s by connections, per server
    responder-load.png       responder requests per certificate vs prefork workers and fleet size
    responder-timeline.png   responder requests per second from start-up through one refresh
    scale-memory.png         PSS per worker and in total vs N vhosts
    scale-startup.png        time to the first and to every name stapled, and -t, vs N

Every figure carries the machine, the date and the commit it was measured on.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = str(ROOT / ".venv/bin/python")
COLORS = {"httpd-py": "#1f77b4", "apache2": "#d62728", "nginx": "#2ca02c"}


# -- the machine and the tree -------------------------------------------------------------------

def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem_gb = kb / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass

    def out(*argv: str) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT)
            return (p.stdout or p.stderr).strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    commit = out("git", "rev-parse", "--short", "HEAD")
    dirty = out("git", "status", "--porcelain", "--", "httpd_py", "scripts")
    apache = out("apache2", "-v").splitlines()[:1] or out("/usr/sbin/apache2", "-v").splitlines()[:1]
    return {"cores": os.cpu_count(), "model": model, "mem_gb": round(mem_gb, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "commit": commit + ("+local changes" if dirty else ""),
            "apache": apache[0].split(":", 1)[-1].strip() if apache else "",
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": Path("/proc/loadavg").read_text().split()[:3]}


def stamp(m: dict) -> str:
    load = " ".join(m["load"])
    if m.get("load_after"):
        load += f" at the start, {' '.join(m['load_after'])} at the end"
    return (f"{m['date']} | httpd-py {m['commit']} | {m['cores']} cores {m['model']}, "
            f"{m['mem_gb']:g} GB | load average {load}")


# -- running ------------------------------------------------------------------------------------

def run(argv: list[str], log: Path, timeout: float) -> str:
    print(f"$ {' '.join(shlex.quote(a) for a in argv)}", file=sys.stderr, flush=True)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    log.write_text(p.stdout + ("\n<!-- stderr:\n" + p.stderr[-4000:] + "\n-->\n" if p.stderr else ""))
    if p.returncode != 0:
        raise SystemExit(f"{argv[1]} failed ({p.returncode}); see {log}")
    return p.stdout


def parse_handshake(md: str) -> dict:
    """bench_handshake.py's Markdown tables back into numbers."""
    hs, ka = [], []
    conns = None
    for line in md.splitlines():
        m = re.search(r"wrk -t2 -c(\d+)", line)
        if m and not line.startswith("|"):
            conns = int(m.group(1))
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 9 and cells[0] in ("rsa", "ec"):
            hs.append({"key": cells[0], "status": cells[1] == "yes", "server": cells[2],
                       "per_s": float(cells[3]), "cpu_ms": float(cells[4]), "range": cells[5],
                       "stapled": cells[8]})
        elif len(cells) == 6 and conns is not None and cells[0] not in ("server",):
            ka.append({"connections": conns, "server": cells[0], "per_s": float(cells[1]),
                       "range": cells[2], "cpu_us": float(cells[5])})
    return {"handshakes": hs, "keepalive": ka}


# -- plots --------------------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _finish(fig, m: dict, path: Path, title: str) -> None:
    fig.suptitle(title, fontsize=10 if len(title) < 90 else 8.5)
    fig.text(0.01, 0.005, stamp(m), fontsize=6.5, color="#555555", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    fig.savefig(path, dpi=110)
    _plt().close(fig)


def color(server: str) -> str:
    return COLORS.get(server, "#9467bd" if server.startswith("httpd-py-") else "#7f7f7f")


def plot_handshake_cpu(hs: list[dict], m: dict, out: Path) -> Path | None:
    if not hs:
        return None
    plt = _plt()
    cells = sorted({(r["key"], r["status"]) for r in hs}, key=lambda c: (c[0] != "rsa", c[1]))
    servers = list(dict.fromkeys(r["server"] for r in hs))
    fig, ax = plt.subplots(figsize=(7.5, 4))
    width = 0.8 / len(servers)
    for i, srv in enumerate(servers):
        ys = [next((r["cpu_ms"] for r in hs if r["server"] == srv and (r["key"], r["status"]) == c), 0)
              for c in cells]
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(cells))]
        bars = ax.bar(xs, ys, width, label=srv, color=color(srv))
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels([f"{'RSA-2048' if k == 'rsa' else 'P-256'}\n{'status_request' if s else 'no staple'}"
                        for k, s in cells])
    ax.set_ylabel("server CPU per full handshake (ms)")
    ax.legend()
    path = out / "handshake-cpu.png"
    _finish(fig, m, path, "Server CPU per TLS 1.3 full handshake (+1 small GET), median of rounds")
    return path


def plot_latency_cdf(scale: list[dict], m: dict, out: Path) -> Path | None:
    rows = [r for r in scale if r.get("steady", {}).get("latencies_ms")]
    if not rows:
        return None
    plt = _plt()
    ns = sorted({r["n"] for r in rows})
    fig, axes = plt.subplots(1, len(ns), figsize=(4 * len(ns), 3.6), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], ns):
        for r in rows:
            if r["n"] != n:
                continue
            lat = sorted(r["steady"]["latencies_ms"])
            ys = [(i + 1) / len(lat) for i in range(len(lat))]
            ax.plot(lat, ys, label=f"{r['server']} (p99 {r['steady']['p99_ms']:.1f} ms)",
                    color=color(r["server"]))
        ax.set_xscale("log")
        ax.set_title(f"N = {n} vhosts", fontsize=10)
        ax.set_xlabel("connect + handshake (ms, log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("fraction of handshakes")
    path = out / "latency-cdf.png"
    _finish(fig, m, path, "Handshake latency CDF, status_request, SNI cycling over all N names")
    return path


def plot_keepalive(ka: list[dict], m: dict, out: Path) -> Path | None:
    if not ka:
        return None
    plt = _plt()
    conns = sorted({r["connections"] for r in ka})
    servers = list(dict.fromkeys(r["server"] for r in ka))
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    width = 0.8 / len(servers)
    for i, srv in enumerate(servers):
        ys = [next((r["per_s"] for r in ka if r["server"] == srv and r["connections"] == c), 0) for c in conns]
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(conns))]
        bars = ax.bar(xs, ys, width, label=srv, color=color(srv))
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(conns)))
    ax.set_xticklabels([f"{c} connections" for c in conns])
    ax.set_ylabel("requests/s (median)")
    ax.legend()
    path = out / "keepalive.png"
    _finish(fig, m, path, "Keep-alive GET of a 100-byte file over TLS 1.3, wrk -t2")
    return path


def plot_responder_load(load: list[dict], m: dict, out: Path) -> Path | None:
    if not load:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    for srv in dict.fromkeys(r["server"] for r in load):
        rows = sorted((r for r in load if r["server"] == srv and r["cache"] == "shmcb" and r["fleet"] == 1),
                      key=lambda r: r["workers"])
        a1.plot([r["workers"] for r in rows], [r["per_certificate"] for r in rows], "o-",
                label=srv, color=color(srv))
        for cache, style in (("shmcb", "o-"), ("redis", "s--")):
            rows = sorted((r for r in load if r["server"] == srv and r["cache"] == cache and r["workers"] == 4),
                          key=lambda r: r["fleet"])
            if rows:
                a2.plot([r["fleet"] for r in rows], [r["per_certificate"] for r in rows], style,
                        label=f"{srv}, {cache} cache{' (shared)' if cache == 'redis' else ' per server'}",
                        color=color(srv))
    a1.set_xticks(sorted({r["workers"] for r in load if r["fleet"] == 1}))
    a2.set_xticks(sorted({r["fleet"] for r in load}))
    a1.set_xlabel("prefork workers (one server)")
    a1.set_ylabel("responder requests per certificate")
    a2.set_xlabel("servers started together (4 workers each)")
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
        a.legend(fontsize=7)
    n = load[0]["n"]
    path = out / "responder-load.png"
    _finish(fig, m, path, f"OCSP responder requests from start until every name was served once ({n} certificates)")
    return path


def plot_responder_timeline(scale: list[dict], m: dict, out: Path) -> Path | None:
    rows = [r for r in scale if r.get("refresh", {}).get("timeline")]
    if not rows:
        return None
    n_max = max(r["n"] for r in rows)
    rows = [r for r in rows if r["n"] == n_max]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for r in rows:
        tl = r["refresh"]["timeline"]
        ax.plot(range(len(tl)), tl, drawstyle="steps-post", color=color(r["server"]),
                label=f"{r['server']}" + (f": refresh peak {r['refresh'].get('refresh_peak_per_s')}/s"
                                          if r["refresh"].get("refresh_peak_per_s") else ""))
    ax.set_xlabel("seconds since the server was started")
    ax.set_ylabel("responder requests per second")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "responder-timeline.png"
    _finish(fig, m, path, f"OCSP responder requests per second, N = {n_max}: start-up, then one refresh")
    return path


def plot_scale(scale: list[dict], m: dict, out: Path) -> list[Path]:
    if not scale:
        return []
    plt = _plt()
    servers = list(dict.fromkeys(r["server"] for r in scale))
    paths = []
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for srv in servers:
        rows = sorted((r for r in scale if r["server"] == srv), key=lambda r: r["n"])
        ns = [r["n"] for r in rows]
        a1.plot(ns, [r["memory"]["worker_pss_mean_kb"] / 1024 for r in rows], "o-", label=srv, color=color(srv))
        a2.plot(ns, [r["memory"]["total_pss_kb"] / 1024 for r in rows], "o-", label=srv, color=color(srv))
    for a, what in ((a1, "PSS per worker (MB, mean)"), (a2, "PSS of all processes (MB)")):
        a.set_xscale("log")
        a.set_xlabel("vhosts (one certificate each)")
        a.set_ylabel(what)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    path = out / "scale-memory.png"
    _finish(fig, m, path, "Memory after start-up and a steady run over all names (PSS: shared pages counted once)")
    paths.append(path)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for srv in servers:
        rows = sorted((r for r in scale if r["server"] == srv), key=lambda r: r["n"])
        ns = [r["n"] for r in rows]
        a1.plot(ns, [r.get("first_stapled_s") for r in rows], "o-", label=f"{srv}: first stapled", color=color(srv))
        a1.plot(ns, [r.get("all_stapled_s") for r in rows], "s--", label=f"{srv}: all stapled", color=color(srv))
        c = [r["config"].get("t_nopreflight_s", r["config"].get("t_s")) for r in rows]
        a2.plot(ns, c, "o-", label=f"{srv} -t" + (" (no preflight)" if srv.startswith("httpd-py") else ""),
                color=color(srv))
    for a, what in ((a1, "seconds after exec"), (a2, "-t wall time (s)")):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("vhosts (one certificate each)")
        a.set_ylabel(what)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    path = out / "scale-startup.png"
    _finish(fig, m, path, "Start-up: until the first handshake and until every name is served a good staple")
    paths.append(path)
    return paths


# -- the page -----------------------------------------------------------------------------------

def page(m: dict, scale_md: str, hs_md: str, images: list[Path], doc: Path, notes: str) -> str:
    rel = [os.path.relpath(p, doc.parent) for p in images]
    lines = [
        "# Benchmark report (generated)",
        "",
        f"Generated by `scripts/bench report` ({Path(__file__).name}) on {m['date']}, commit "
        f"{m['commit']}: {m['cores']} cores, {m['model']}, {m['mem_gb']:g} GB, Linux {m['kernel']}, "
        f"Python {m['python']}, {m['apache']}.  Load average at the start {' '.join(m['load'])} "
        f"(the cores are shared with other jobs: read medians and ratios).  The raw outputs are "
        f"beside the figures (`docs/img/bench/`).  Hand-written readings of these figures are in "
        f"[benchmarks.md](benchmarks.md).",
        "",
    ]
    if notes:
        lines += [notes, ""]
    for p in rel:
        lines += [f"![{Path(p).stem}]({p})", ""]
    if scale_md.strip():
        lines += ["## Scale (`scripts/bench scale`)", "", scale_md.strip(), ""]
    if hs_md.strip():
        lines += ["## Handshakes and keep-alive (`scripts/bench handshake`)", "", hs_md.strip(), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-report.md")
    ap.add_argument("--img", type=Path, default=ROOT / "docs" / "img" / "bench")
    ap.add_argument("--from", dest="from_dir", type=Path, default=None,
                    help="plot the scale.json / handshake.md already in this directory")
    ap.add_argument("--quick", action="store_true", help="N = 10,100, short runs (a look, not a record)")
    ap.add_argument("--scale-args", default="", help="more arguments for bench_scale.py")
    ap.add_argument("--handshake-args", default="", help="more arguments for bench_handshake.py")
    ap.add_argument("--no-handshake", action="store_true")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--notes", default="", help="a paragraph put above the figures")
    ap.add_argument("--tree", type=Path, default=None,
                    help="run httpd-py from this snapshot (`git archive HEAD httpd_py | tar -x -C DIR`) "
                         "rather than the working tree")
    args = ap.parse_args(argv)
    args.img.mkdir(parents=True, exist_ok=True)
    m = machine()
    if args.tree is not None:
        # a snapshot measures the commit it was taken from (write it to DIR/.commit:
        # `git rev-parse --short HEAD > DIR/.commit`), not this checkout's HEAD
        marker = args.tree / ".commit"
        m["commit"] = (marker.read_text().strip() if marker.exists() else "?") + f" (snapshot {args.tree})"
    if args.from_dir is not None and (args.from_dir / "results.json").exists():
        m = json.loads((args.from_dir / "results.json").read_text())["machine"]
    src = args.from_dir or args.img
    if args.from_dir is None:
        if not args.no_scale:
            scale_argv = [PY, str(HERE / "bench_scale.py"), "--fleet", "--json", str(args.img / "scale.json")]
            if args.tree:
                scale_argv += ["--tree", str(args.tree.resolve())]
            if args.quick:
                scale_argv += ["--n", "10,100", "--seconds", "3", "--fleet-n", "20", "--no-refresh"]
            run(scale_argv + shlex.split(args.scale_args), args.img / "scale.md", timeout=3 * 3600)
        if not args.no_handshake:
            hs_argv = [PY, str(HERE / "bench_handshake.py")]
            if args.tree:      # bench_handshake runs another tree as "httpd-py-alt" (renamed below)
                hs_argv += ["--alt", str(args.tree.resolve()), "--servers", "httpd-py-alt", "apache2", "nginx"]
            if args.quick:
                hs_argv += ["--seconds", "2", "--rounds", "1", "--ka-seconds", "2"]
            run(hs_argv + shlex.split(args.handshake_args), args.img / "handshake.md", timeout=3 * 3600)
    if args.from_dir is None:
        m["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    scale_data = json.loads((src / "scale.json").read_text()) if (src / "scale.json").exists() else {}
    scale_md = (src / "scale.md").read_text() if (src / "scale.md").exists() else ""
    hs_md = (src / "handshake.md").read_text() if (src / "handshake.md").exists() else ""
    hs_md = hs_md.replace("| httpd-py-alt |", "| httpd-py |")
    hs = parse_handshake(hs_md)
    scale = scale_data.get("results", [])
    images = [p for p in (
        plot_handshake_cpu(hs["handshakes"], m, args.img),
        plot_latency_cdf(scale, m, args.img),
        plot_keepalive(hs["keepalive"], m, args.img),
        plot_responder_load(scale_data.get("responder_load", []), m, args.img),
        plot_responder_timeline(scale, m, args.img),
        *plot_scale(scale, m, args.img),
    ) if p is not None]
    # the machine and the handshake numbers (the scale numbers are in scale.json)
    (args.img / "results.json").write_text(json.dumps({"machine": m, "handshake": hs}, indent=1))
    args.out.write_text(page(m, re.sub(r"<!-- stderr:.*?-->", "", scale_md, flags=re.S),
                             re.sub(r"<!-- stderr:.*?-->", "", hs_md, flags=re.S), images, args.out,
                             args.notes))
    print(f"wrote {args.out} and {len(images)} figures in {args.img}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
