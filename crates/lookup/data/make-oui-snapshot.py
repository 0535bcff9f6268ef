#!/usr/bin/env python3
"""Builds `oui.csv.gz`, the IEEE registry snapshot compiled into vantage-lookup.

The input is a directory holding the IEEE's public CSV exports (`oui.csv` MA-L, `oui28.csv`
MA-M, `oui36.csv` MA-S, `cid.csv`, `iab.csv`), e.g. the `data/` directory of the `oui-data`
crate from crates.io. Rows keep the IEEE's four columns; an assignment listed twice keeps its
first row, in the order above. The output is deterministic (gzip without a timestamp), so
rebuilding from the same inputs gives the same bytes.

    crates/lookup/data/make-oui-snapshot.py DIR [OUT]
"""

import csv
import gzip
import io
import os
import sys

FILES = ["oui.csv", "oui28.csv", "oui36.csv", "cid.csv", "iab.csv"]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "oui.csv.gz")
    seen = set()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Registry", "Assignment", "Organization Name", "Organization Address"])
    rows = 0
    for name in FILES:
        with open(os.path.join(src, name), newline="", encoding="utf-8") as f:
            r = csv.reader(f)
            header = next(r)
            if [h.strip().lower() for h in header[:3]] != ["registry", "assignment", "organization name"]:
                sys.exit(f"{name}: not an IEEE CSV export (header {header})")
            for row in r:
                if len(row) < 3:
                    continue
                key = row[1].strip().upper()
                if key in seen:
                    continue
                seen.add(key)
                address = row[3].strip() if len(row) > 3 else ""
                w.writerow([row[0].strip(), key, row[2].strip(), address])
                rows += 1
    data = buf.getvalue().encode("utf-8")
    with open(out, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0, compresslevel=9) as gz:
            gz.write(data)
    print(f"{out}: {rows} assignments, {len(data)} bytes, {os.path.getsize(out)} compressed")


if __name__ == "__main__":
    main()
