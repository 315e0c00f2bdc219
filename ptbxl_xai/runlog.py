"""Logging for workflow scripts: everything a job prints ends up in its rule's log file."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path


@contextlib.contextmanager
def logged(log_path: str | Path, level: int = logging.INFO, brief: tuple[type[BaseException], ...] = ()):
    """Send logging, stderr (tqdm bars, warnings) and any traceback of the block to `log_path`.

    The exception is re-raised after it is logged, so the job still fails. Exceptions of the
    `brief` types are errors a user can act on: their traceback stays in the log and the job
    fails with their one-line message (SystemExit) instead of a traceback wall on the console.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A log file is not a terminal: one progress line every 10 s, not one per batch.
    os.environ.setdefault("TQDM_MININTERVAL", "10")
    with open(log_path, "a", buffering=1) as stream:
        old_stderr = sys.stderr
        sys.stderr = stream
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(level)
        # matplotlib's PDF backend subsets fonts through fontTools, which logs every table it prunes at INFO
        logging.getLogger("fontTools").setLevel(max(level, logging.WARNING))
        logging.captureWarnings(True)
        try:
            yield logging.getLogger("workflow")
        except brief as exc:
            # the user-facing line last; the traceback without its chain (the cause is in the
            # message), since Snakemake echoes a failed job's log (show-failed-logs)
            trace = "".join(traceback.format_exception(exc, chain=False)).rstrip()
            logging.getLogger("workflow").error("job failed:\n%s\n%s", trace, exc)
            raise SystemExit(str(exc)) from None
        except BaseException:
            logging.getLogger("workflow").exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
            sys.stderr = old_stderr
