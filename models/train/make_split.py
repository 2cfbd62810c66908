"""Writes split.json: the fixed validation split of the shared set (never trained on).

Grouped by patient (metadata.csv patientid: follow-up films of one patient stay on one side, else the
validation figures would measure memory of that patient) and stratified on GGO: the validation set
holds GGO-negative images in about the share the whole set has (7/80), so specificity is measurable.
Usage: /usr/bin/python3 make_split.py --data ../../../shared/data/cxr-covid-seg [--val 16] [--seed 2026]
"""
import argparse
import csv
import json
import os
import random

import cxrdata


def make_split(root, n_val=16, seed=2026, n_neg=2):
    per_image = cxrdata.read_structure(root)
    meta = {}
    mp = os.path.join(root, "metadata.csv")
    if os.path.exists(mp):
        with open(mp, newline="") as f:
            meta = {r["filename"]: r for r in csv.DictReader(f)}
    ggo_names = cxrdata.CLASS_SOURCES[1][1]
    groups = {}
    for fn, rows in per_image.items():
        pid = meta.get(fn, {}).get("patientid") or ("file:" + fn)
        groups.setdefault(pid, []).append((fn, any(r["cls"] in ggo_names for r in rows)))
    pids = sorted(groups)
    random.Random(seed).shuffle(pids)
    val, negs = [], 0
    for want_neg in (True, False):
        for pid in pids:
            g = groups[pid]
            if any(fn in val for fn, _ in g):
                continue
            has_neg = any(not pos for _, pos in g)
            if want_neg != has_neg or len(val) + len(g) > n_val:
                continue
            if want_neg and negs >= n_neg:
                continue
            val += [fn for fn, _ in g]
            negs += sum(1 for _, pos in g if not pos)
    val = sorted(val)
    train = sorted(fn for fn in per_image if fn not in val)
    return {"seed": seed, "rule": "grouped by patientid, %d GGO-negative images in val" % negs,
            "val": val, "train": train}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "split.json"))
    a = ap.parse_args()
    s = make_split(a.data, a.val, a.seed)
    with open(a.out, "w") as f:
        json.dump(s, f, indent=1)
        f.write("\n")
    print(f"{a.out}: {len(s['train'])} train, {len(s['val'])} val ({s['rule']})")
