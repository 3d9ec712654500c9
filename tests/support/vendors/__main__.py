"""Serve one vendor stand-in until SIGTERM (see ``tests.support.vendors.process``).

    python -m tests.support.vendors sendgrid|twilio|fcm|apns|webhook
        [--config JSON] [--port N] [--url-file PATH]

``--config`` is the stand-in's keyword arguments, plus for FCM ``service_account_file`` and for
APNs ``signing_key_file``: where to write the key the client under test must use. The base URL
is written to ``--url-file`` (and printed) once the port listens.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

import orjson

from tests.support.vendors import STAND_INS
from tests.support.vendors.apns import ApnsStandIn
from tests.support.vendors.fcm import FcmStandIn


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.vendors")
    parser.add_argument("vendor", choices=sorted(STAND_INS))
    parser.add_argument("--config", default="{}")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--url-file", type=Path)
    args = parser.parse_args()
    config: dict[str, Any] = orjson.loads(args.config)
    service_account_file = config.pop("service_account_file", None)
    signing_key_file = config.pop("signing_key_file", None)
    stand_in = STAND_INS[args.vendor](**config)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with stand_in.serve(args.port) as running:
        if isinstance(running, FcmStandIn) and service_account_file:
            running.service_account(Path(service_account_file))
        if isinstance(running, ApnsStandIn) and signing_key_file:
            running.signing_key(Path(signing_key_file))
        if args.url_file is not None:
            partial = args.url_file.with_suffix(".partial")
            partial.write_text(running.base_url)
            partial.replace(args.url_file)  # readers never see half a URL
        print(f"{args.vendor} stand-in on {running.base_url}", flush=True)
        stopping.wait()


if __name__ == "__main__":
    main()
