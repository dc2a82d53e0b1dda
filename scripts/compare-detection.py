#!/usr/bin/env python3
"""Canary vs detect-secrets (PyPI) vs Debian's `yara` CLI with our miner rules, on the
same fixture images: recall on the planted image, false alarms on the clean control, wall
time. Prints the Markdown table for docs/detection.md.

    python3 scripts/compare-detection.py [--out DIR]

Builds the fixtures with `cargo run --release --example detection-fixtures`, installs
detect-secrets into a venv under /var/tmp/canary-testdata and yara from Debian if missing.
Everything runs locally; nothing is sent anywhere.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/var/tmp/canary-testdata"
TARGET = os.environ.get("CARGO_TARGET_DIR", "/var/tmp/canary-target")
DS_VERSION = "1.5.0"


def run(cmd, **kw):
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return p, time.monotonic() - t


def ensure_tools():
    venv = os.path.join(DATA, "detect-secrets-venv")
    ds = os.path.join(venv, "bin", "detect-secrets")
    if not os.path.exists(ds):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q",
                        f"detect-secrets=={DS_VERSION}"], check=True)
    if subprocess.run(["which", "yara"], capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "yara"], check=True)
    return ds


def layer_of(rel):
    """'layer-3/etc/x' -> (3, '/etc/x')"""
    head, _, rest = rel.partition("/")
    return int(head.split("-")[1]), "/" + rest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(DATA, "detection"))
    args = ap.parse_args()
    out = args.out
    ds = ensure_tools()
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "canary",
                    "--example", "detection-fixtures"], cwd=ROOT, check=True)
    subprocess.run([os.path.join(TARGET, "release", "examples", "detection-fixtures"), out],
                   check=True)
    canary = os.path.join(TARGET, "release", "canary")
    expected = json.load(open(os.path.join(out, "planted-expected.json")))
    secrets_exp = [e for e in expected if e["rule"].startswith(("secret/", "file/"))]
    miners_exp = [e for e in expected if e["rule"].startswith(("miner/", "packer/", "config/"))]
    yara_rule_ids = set()
    for line in open(os.path.join(ROOT, "rules", "data", "miners.yar")):
        line = line.strip()
        if line.startswith("id = "):
            yara_rule_ids.add(line.split('"')[1])
    rows = []

    # --- canary: the images themselves -------------------------------------------------
    res = {}
    for name in ("planted", "clean"):
        p, secs = run([canary, "scan", "--no-progress", "-f", "json",
                       f"docker-archive:{out}/{name}.tar"])
        if p.returncode not in (0, 1):
            sys.exit(f"canary failed on {name}: {p.stderr}")
        res[name] = (json.loads(p.stdout), secs)
    got = []
    for f in res["planted"][0]["images"][0]["findings"]:
        loc = f["location"]
        got.append((f["rule_id"], loc.get("path", "(config)"), loc.get("visibility", "visible"),
                    loc.get("archive_chain", [])))

    def hit(e):
        return any(r == e["rule"] and (e["path"] == "(config)" or (p == e["path"] and v == e["visibility"]))
                   and c == e["chain"] for r, p, v, c in got)

    def loud(report):
        return [f for f in report["images"][0]["findings"]
                if f["severity"] in ("medium", "high", "critical")]

    c_sec = sum(hit(e) for e in secrets_exp)
    c_min = sum(hit(e) for e in miners_exp)
    rows.append(("canary (image tarballs)", f"{c_sec}/{len(secrets_exp)}", f"{c_min}/{len(miners_exp)}",
                 str(len(loud(res["clean"][0]))),
                 f"{res['planted'][1]:.1f} s / {res['clean'][1]:.1f} s"))

    # --- detect-secrets over the extracted layers ------------------------------------
    ds_found = {}
    times = []
    for name in ("planted", "clean"):
        p, secs = run([ds, "scan", "--all-files", "."], cwd=os.path.join(out, name))
        times.append(secs)
        ds_found[name] = json.loads(p.stdout)["results"]
    files = set()
    for rel in ds_found["planted"]:
        files.add(layer_of(rel)[1])
    # A secret counts as found when detect-secrets reports anything in its file (the most
    # generous reading); it cannot see inside archives or the image config.
    ds_sec = sum(1 for e in secrets_exp if not e["chain"] and e["path"] in files)
    ds_fp = sum(len(v) for v in ds_found["clean"].values())
    rows.append(("detect-secrets " + DS_VERSION + " (extracted layers)", f"{ds_sec}/{len(secrets_exp)}",
                 "n/a", str(ds_fp), f"{times[0]:.1f} s / {times[1]:.1f} s"))

    # --- yara 4 with our miners.yar over the extracted layers -----------------------
    yara_hits = {}
    times = []
    for name in ("planted", "clean"):
        p, secs = run(["yara", "-r", "-w", "-m", os.path.join(ROOT, "rules", "data", "miners.yar"), "."],
                      cwd=os.path.join(out, name))
        times.append(secs)
        hits = []
        for line in p.stdout.splitlines():
            # RULE [meta...] ./layer-N/path
            path = line.rsplit(" ./", 1)[-1]
            meta = line[line.find("[") + 1:line.rfind("]")]
            rid = next((m.split('"')[1] for m in meta.split(",") if m.startswith("id=")), None)
            hits.append((rid, path))
        yara_hits[name] = hits
    y_exp = [e for e in miners_exp if e["rule"] in yara_rule_ids]
    y_found = {(rid, layer_of(p)[1]) for rid, p in yara_hits["planted"]}
    y_rec = sum(1 for e in y_exp if not e["chain"] and (e["rule"], e["path"]) in y_found)
    rows.append(("yara 4.2 + miners.yar (extracted layers)", "n/a",
                 f"{y_rec}/{len(y_exp)} (YARA rules only; {len(miners_exp)} miner findings in all)",
                 str(len(yara_hits["clean"])), f"{times[0]:.1f} s / {times[1]:.1f} s"))

    clean_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(out, "clean"))
                   for f in fs if os.path.isfile(os.path.join(d, f))) >> 20
    print(f"Planted image: {len(expected)} expected findings ({len(secrets_exp)} secret, {len(miners_exp)} miner/config).")
    print(f"Clean control: {clean_mb} MiB of files (Debian packages of this machine + bait files).\n")
    print("| tool | secrets found | miner findings | false alarms on clean (≥ medium for canary; every result for the others) | wall time planted / clean |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    missed = [e for e in expected if not hit(e)]
    if missed:
        print("\ncanary missed:", json.dumps(missed, indent=1))


if __name__ == "__main__":
    main()
