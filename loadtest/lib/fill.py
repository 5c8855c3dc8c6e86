#!/usr/bin/env python3
"""Reads every URL of a file once (keep-alive connections, a few threads), so a cache is warm for
every id before a measured run. Prints how many answers of each status came back.

Usage: fill.py URL_FILE [threads]
"""
import collections
import http.client
import sys
import threading
import urllib.parse


def worker(urls, counts, lock):
    conns = {}
    local = collections.Counter()
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        conn = conns.get(parts.netloc)
        if conn is None:
            conn = conns[parts.netloc] = http.client.HTTPConnection(parts.netloc, timeout=10)
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        response.read()
        local[response.status] += 1
    with lock:
        counts.update(local)


def main():
    path = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    with open(path) as f:
        urls = [line.strip() for line in f if line.strip()]
    counts, lock = collections.Counter(), threading.Lock()
    pool = [
        threading.Thread(target=worker, args=(urls[i::threads], counts, lock))
        for i in range(threads)
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print("filled:", dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
