"""The `ecgxai` command: `ecgxai serve --run NAME` starts the live app on a trained run."""

from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgxai", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="a local web app and JSON API: predictions and explanations of one ECG at a time",
        description="Serve a trained run: upload a WFDB record (or pick a test record) in the browser, get "
        "predictions at once and SHAP/LIME/attention within about a second. Settings: config `serve`.",
    )
    serve.add_argument("--run", required=True, help="a trained run (results/models/RUN/model.pt)")
    serve.add_argument("--results", default="results", help="the workflow's results folder (default: results)")
    serve.add_argument(
        "--configfile",
        nargs="+",
        default=["config.yaml"],
        help="the workflow's config files, later ones merged over earlier ones, as for snakemake "
        "(default: config.yaml; e.g. config.yaml tests/config/synthetic.yaml)",
    )
    serve.add_argument("--host", help="address to bind (config serve.host, default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, help="TCP port (config serve.port)")
    serve.add_argument("--max-upload-mb", type=float, help="upload cap in MB (config serve.max_upload_mb)")
    return parser


def serve(args) -> int:
    import uvicorn

    from ecgxai.app.server import create_app
    from ecgxai.app.service import RunService, set_torch_threads
    from ecgxai.app.settings import ServeSettings, load_config

    config = load_config(args.configfile)
    settings = ServeSettings.from_config(
        config["serve"], host=args.host, port=args.port, max_upload_mb=args.max_upload_mb
    )
    set_torch_threads(settings.threads)
    service = RunService(args.results, args.run, config)  # model, thresholds, reference: loaded once
    app = create_app(service, settings)
    print(
        f"ecgxai serve: run {args.run} ({len(service.label_names)} labels, {len(service.test_ids)} test records) "
        f"at http://{settings.host}:{settings.port}/  (API docs: /docs; Ctrl+C stops)",
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", workers=1)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve(args)
    except (FileNotFoundError, ValueError) as exc:  # a missing run or a bad config: one line, no traceback
        print(f"ecgxai {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
