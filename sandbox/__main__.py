"""Serve emulators until SIGTERM/SIGINT.

    python -m sandbox feishu --port 8750 --records 200 --seed 1 [--no-rate-limits]
                             [--rate-limit-scale X] [--ready-file PATH] [--verbose]
    python -m sandbox msgraph --port 8751 --devices 200 --seed 1 [--no-throttling]
                              [--write-limit-scale X] [--ready-file PATH] [--verbose]
    python -m sandbox all --feishu-port 8750 --msgraph-port 8751 [the options of both]

Once listening, one JSON line goes to stdout (and to --ready-file), e.g.
{"feishu": "http://127.0.0.1:8750", "app_id": "cli_sandbox", "app_secret": "sandbox-secret"};
`all` prints one line merging every emulator's fields.

Each subcommand registers itself in EMULATORS with an options function and its factories.
"""

import argparse
import json
import os
import signal
import sys
import threading

from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID, GraphSandbox


def add_feishu_options(parser, port_flag="--port"):
    parser.add_argument(port_flag, dest="feishu_port", metavar="PORT", type=int, default=8750,
                        help="0 picks a free port (default: 8750)")
    parser.add_argument("--records", type=int, default=200, help="generated device records (default: 200)")
    parser.add_argument("--no-rate-limits", dest="rate_limits", action="store_false", help="never answer 429")
    parser.add_argument("--rate-limit-scale", type=float, default=1.0, help="multiply every rate limit (default: 1.0)")
    parser.add_argument("--app-id", default="cli_sandbox")
    parser.add_argument("--app-secret", default="sandbox-secret")


def build_feishu(args):
    emulator = FeishuSandbox(
        records=args.records,
        seed=args.seed,
        rate_limits=args.rate_limits,
        rate_limit_scale=args.rate_limit_scale,
        app_id=args.app_id,
        app_secret=args.app_secret,
    )
    return emulator, args.feishu_port


def add_msgraph_options(parser, port_flag="--port"):
    parser.add_argument(port_flag, dest="msgraph_port", metavar="PORT", type=int, default=8751,
                        help="0 picks a free port (default: 8751)")
    parser.add_argument("--devices", type=int, default=200, help="generated devices (default: 200)")
    parser.add_argument("--no-throttling", dest="throttling", action="store_false", help="never answer 429")
    parser.add_argument("--write-limit-scale", type=float, default=1.0,
                        help="multiply the device write limits (default: 1.0)")
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)


def build_msgraph(args):
    emulator = GraphSandbox(
        devices=args.devices,
        seed=args.seed,
        throttling=args.throttling,
        write_limit_scale=args.write_limit_scale,
        tenant_id=args.tenant_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
    )
    return emulator, args.msgraph_port


def add_all_options(parser):
    add_feishu_options(parser, port_flag="--feishu-port")
    add_msgraph_options(parser, port_flag="--msgraph-port")


# subcommand -> (help, add options to its parser, factories each returning (emulator, port))
EMULATORS = {
    "feishu": ("Feishu/Lark device-record API", add_feishu_options, [build_feishu]),
    "msgraph": ("Microsoft Graph device API and its token endpoint", add_msgraph_options, [build_msgraph]),
    "all": ("every emulator, each on its own port", add_all_options, [build_feishu, build_msgraph]),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Local API emulators for tests and demos.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="EMULATOR")
    for name, (help_text, add_options, factories) in EMULATORS.items():
        command = commands.add_parser(name, help=help_text)
        add_options(command)
        add_common_options(command)
        command.set_defaults(factories=factories)
    return parser


def add_common_options(parser):
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (default: 1)")
    parser.add_argument("--ready-file", help="also write the ready JSON line to this file (removed on exit)")
    parser.add_argument("--verbose", action="store_true", help="log requests (method, path, status) to stderr")


def write_ready_file(path, line):
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(line + "\n")
    os.replace(temporary, path)  # readers never see a half-written file


def serve(emulators, args):
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    started = []
    try:
        for emulator, port in emulators:
            started.append(emulator.start(port=port, verbose=args.verbose))
        ready = {}
        for emulator in started:
            ready.update(emulator.ready_info())
        line = json.dumps(ready)
        if args.ready_file:  # first, so a caller that saw stdout also finds the file
            write_ready_file(args.ready_file, line)
        print(line, flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        for emulator in started:
            emulator.stop()
        if args.ready_file and os.path.exists(args.ready_file):
            os.remove(args.ready_file)


def main(argv=None):
    args = build_parser().parse_args(argv)
    emulators = [factory(args) for factory in args.factories]
    try:
        serve(emulators, args)
    except OSError as exc:
        print(f"sandbox: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
