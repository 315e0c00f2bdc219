"""The `ecgxai` command: the live app, synthetic data and the report captions, one subcommand each.

`ecgxai --help` lists them; `ecgxai COMMAND --help` says what each takes. Building the parser imports nothing
heavy (no numpy, torch or the web stack): each subcommand imports what it needs when it runs, so `--help` and
`--version` answer at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

DISTRIBUTION = "ptbxl-xai"  # `pip install ptbxl-xai`; `ecgxai` on PyPI is another project, with a package `ecgxai`
SYNTHETIC_RATES = (100, 500)  # = sorted(ptbxl_xai.data.ptbxl.RATES), spelled here so `--help` imports no numpy


def version() -> str:
    """The installed distribution's version, or the package's own where it runs from a checkout uninstalled."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:  # on PYTHONPATH only (the workflow's conda envs)
        from ptbxl_xai import __version__

        return __version__


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr (what is wrong, where to look) and exit status 2, no usage block."""

    def error(self, message: str) -> None:
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _Version(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"ecgxai {version()}")
        parser.exit(0)


def _count(text: str) -> int:
    """An int >= 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _seed(text: str) -> int:
    """An int >= 0 (numpy's SeedSequence takes no negative seed)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {n}")
    return n


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ecgxai",
        description="Explainable ECG classification on PTB-XL. The workflow itself runs with `snakemake --cores all`;"
        " this command holds what runs outside it.",
    )
    parser.add_argument("--version", action=_Version, help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    serve.set_defaults(handler=_serve, one_line=(FileNotFoundError, ValueError))

    synthetic = sub.add_parser(
        "synthetic",
        help="write a small seeded PTB-XL-shaped data set (database, statements, WFDB records)",
        description="Write a synthetic PTB-XL copy into OUT: ptbxl_database.csv, scp_statements.csv, the WFDB "
        "records (records100/, records500/) and the fiducials' ground truth (fiducials.csv). The same arguments "
        "always give byte-identical files. The workflow reads it with config `data.source: local` and "
        "`data.path: OUT` (`data.source: synthetic` generates one itself).",
    )
    synthetic.add_argument("out", metavar="OUT", help="output folder (created if missing)")
    synthetic.add_argument("--n-records", type=_count, default=240, metavar="N", help="records (default: 240)")
    synthetic.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    synthetic.add_argument(
        "--rates",
        type=int,
        nargs="+",
        default=list(SYNTHETIC_RATES),
        choices=SYNTHETIC_RATES,
        metavar="HZ",
        help=f"sampling rates to write, of {', '.join(map(str, SYNTHETIC_RATES))} (default: both)",
    )
    synthetic.add_argument(
        "--records-per-patient",
        type=_count,
        nargs=2,
        default=[1, 3],
        metavar=("MIN", "MAX"),
        help="records per patient, drawn between MIN and MAX (default: 1 3)",
    )
    synthetic.set_defaults(handler=_synthetic, one_line=(OSError, ValueError), parser=synthetic)

    captions = sub.add_parser(
        "captions",
        help="regenerate the report captions (report/*.rst) from the package",
        description="Write one .rst caption per figure and table of the Snakemake report into FOLDER, from the "
        "captions in ptbxl_xai.report (tests/test_readme.py checks that report/ matches them).",
    )
    captions.add_argument("folder", nargs="?", default="report", metavar="FOLDER", help="(default: report)")
    captions.set_defaults(handler=_captions, one_line=(OSError,))
    return parser


def _serve(args) -> int:
    import uvicorn

    from ptbxl_xai.app.protocol import header_deadline_protocol
    from ptbxl_xai.app.server import create_app
    from ptbxl_xai.app.service import RunService, set_torch_threads
    from ptbxl_xai.app.settings import ServeSettings, load_config

    config = load_config(args.configfile)
    settings = ServeSettings.from_config(
        config["serve"], host=args.host, port=args.port, max_upload_mb=args.max_upload_mb
    )
    set_torch_threads(settings.threads)
    service = RunService(args.results, args.run, config)  # model, thresholds, reference: loaded once
    app = create_app(service, settings)
    print(
        f"ecgxai serve: run {args.run} ({len(service.label_names)} labels, {len(service.test_ids)} test records) "
        f"at http://{settings.host}:{settings.port}/  (API docs: /docs; Ctrl+C stops); "
        "warming up in the background: /api/health says when it is ready",
        flush=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        workers=1,
        limit_concurrency=settings.max_connections,  # beyond it: 503
        http=header_deadline_protocol(settings.header_timeout_s),
    )
    return 0


def _synthetic(args) -> int:
    lo, hi = args.records_per_patient
    if lo > hi:
        args.parser.error(f"argument --records-per-patient: MIN must be <= MAX, got {lo} {hi}")
    from ptbxl_xai.data.synthetic import generate_ptbxl

    out = generate_ptbxl(
        args.out, args.n_records, seed=args.seed, rates=tuple(args.rates), records_per_patient=(lo, hi)
    )
    print(out)
    return 0


def _captions(args) -> int:
    from ptbxl_xai.report.render import write_captions

    for path in write_captions(args.folder):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except BrokenPipeError:  # `ecgxai captions | head`: the reader has gone; stop quietly, as `ls | head` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 1
    except args.one_line as exc:  # a missing run, a bad config, an unwritable folder: one line, no traceback
        print(f"ecgxai {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
