"""`python -m backend [OPTIONS]` is `attnlens serve [OPTIONS]`: the API on `api.host`:`api.port`, checked
before it listens (beyond loopback only with a token); with `api.worker_url` set it uses that worker
service."""

import sys

from attnlens.cli import main

main(["serve", *sys.argv[1:]])
