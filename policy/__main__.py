"""``python -m policy --listen 127.0.0.1:10040``: the policy server with an in-memory engine only."""

import logging

from policy.commands import policyd

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
policyd(prog_name="python -m policy")
