"""One short-lived publisher: start, publish one message, exit (scenario e).

Prints one JSON line with ``publish``: the seconds from creating the
publisher to having closed it (the message handed over for good), after the
interpreter and imports are loaded.
"""

import argparse
import http.client
import json
import time

from benchmarks import payload


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", required=True, choices=("library", "nchan-http"))
    parser.add_argument("--channel", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.mode == "library":
        from services.notifier import client
        start = time.monotonic()
        bridge = client.get_websocket_fallback()
        bridge.broadcast(payload(args.index, time.monotonic()), channel=args.channel)
        if hasattr(bridge, "close"):
            bridge.close()
    else:
        start = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
        body = json.dumps(payload(args.index, time.monotonic()), separators=(",", ":"))
        conn.request("POST", f"/pub?id={args.channel}", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        conn.close()
    print(json.dumps({"publish": time.monotonic() - start}))


if __name__ == "__main__":
    main()
