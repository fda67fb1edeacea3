"""``python3 -m openinspect.runtime``: run the in-sandbox supervisor (see :mod:`.supervisor`)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from .supervisor import EXIT_BAD_CONFIG, ConfigMissing, RuntimeConfig, serve


def main() -> int:
    """Entry point; returns the exit status."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s openinspect-runtime %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = RuntimeConfig.from_env(os.environ)
    except ConfigMissing as exc:
        print(f"openinspect runtime: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return asyncio.run(serve(config, dict(os.environ)))


if __name__ == "__main__":
    sys.exit(main())
