#!/usr/bin/python3
"""Scrapes a Prometheus text endpoint and parses it with prometheus_client's parser (Debian
python3-prometheus-client), printing one JSON object per sample:
{"name": ..., "labels": {...}, "value": ...}; exits 1 with the reason if the scrape or the parse fails.

    /usr/bin/python3 scrape_metrics.py URL
"""

import json
import sys
import urllib.error
import urllib.request

sys.dont_write_bytecode = True

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402


def main(url):
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            content_type = response.headers.get("Content-Type", "")
            text = response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        print(f"HTTP {e.code}: {e.read().decode('utf-8', 'replace').strip()}")
        return 1
    if not content_type.startswith("text/plain"):
        print(f"unexpected Content-Type {content_type!r}")
        return 1
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            print(json.dumps({"name": sample.name, "type": family.type, "labels": sample.labels, "value": sample.value}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
