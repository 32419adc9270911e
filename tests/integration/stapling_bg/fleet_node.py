"""One server of a test fleet, as a separate process: ``python -m
tests.integration.stapling_bg.fleet_node CONF ERROR_LOG``.

Loads the configuration, initialises the real stapling service (which prefetches through the
background stapler, under the fleet lock), prints ``ready`` and runs the stapler's helper loop in
this process until SIGTERM."""
from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    conf, err = argv
    from httpd_py import config, log
    fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    log.configure(fd, "debug")
    from httpd_py.stapling.service import StaplingService
    cfg = config.load(conf)
    svc = StaplingService.from_config(cfg)
    svc.init()
    if svc.stapler is None:
        print("no stapler", flush=True)
        return 1
    print("ready", flush=True)
    svc.stapler.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
