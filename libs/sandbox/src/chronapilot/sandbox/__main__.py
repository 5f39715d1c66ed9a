"""`python -m chronapilot.sandbox`: start the provider sandbox until SIGTERM or SIGINT.

Starts the Google emulator, the Microsoft emulator and Radicale (the iCloud stand-in), seeds a
demo account on each, prints what runs where, and with `--write-env FILE` writes the dotenv file
that points ChronaPilot at them (written last: its appearance means the sandbox is ready).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import date
from pathlib import Path

from chronapilot.sandbox.launcher import PROVIDERS, Sandbox, SandboxConfig


def parse_args(argv: list[str] | None = None) -> tuple[SandboxConfig, Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m chronapilot.sandbox", description=__doc__.splitlines()[0]
    )
    defaults = SandboxConfig()
    parser.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    parser.add_argument("--google-port", type=int, default=defaults.google_port, help="0 = any free port")
    parser.add_argument(
        "--microsoft-port", type=int, default=defaults.microsoft_port, help="0 = any free port"
    )
    parser.add_argument("--radicale-port", type=int, default=defaults.radicale_port, help="0 = any free port")
    parser.add_argument("--data-dir", type=Path, help="keep Radicale's collections and users here")
    parser.add_argument("--state-file-dir", type=Path, help="keep the emulators' JSON state here")
    parser.add_argument("--seed", type=int, help="reproducible demo data and passwords")
    parser.add_argument(
        "--access-token-ttl",
        type=int,
        default=defaults.access_token_ttl,
        help="emulator access-token lifetime, s",
    )
    parser.add_argument("--write-env", type=Path, metavar="FILE", help="write the sandbox settings as dotenv")
    parser.add_argument(
        "--providers",
        default=",".join(PROVIDERS),
        help="comma-separated subset of %(default)s to start",
    )
    parser.add_argument("--anchor", type=date.fromisoformat, help="Monday the iCloud demo events centre on")
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="register with the emulators' sandbox OAuth clients (repeatable; default: their own)",
    )
    args = parser.parse_args(argv)
    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    try:
        config = SandboxConfig(
            host=args.host,
            google_port=args.google_port,
            microsoft_port=args.microsoft_port,
            radicale_port=args.radicale_port,
            data_dir=args.data_dir,
            state_file_dir=args.state_file_dir,
            seed=args.seed,
            access_token_ttl=args.access_token_ttl,
            providers=providers,
            anchor=args.anchor,
            redirect_uris=tuple(args.redirect_uri),
        )
    except ValueError as error:
        parser.error(str(error))
    return config, args.write_env


def describe(sandbox: Sandbox, env_file: Path | None) -> str:
    names = {"google": "Google emulator", "microsoft": "Microsoft emulator", "icloud": "iCloud (Radicale)"}
    lines = [f"ChronaPilot provider sandbox (seed {sandbox.seed})"]
    accounts = sandbox.accounts
    for provider, url in sandbox.urls.items():
        account = accounts[provider]
        lines.append(f"  {names[provider]:<20} {url:<28} demo: {account.email} / {account.password}")
    if env_file is not None:
        lines.append(f"  settings written to {env_file}")
    lines.append("Stop with Ctrl+C (SIGINT) or SIGTERM.")
    return "\n".join(lines)


async def run(config: SandboxConfig, env_file: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Sandbox(config) as sandbox:
        if env_file is not None:
            sandbox.write_env(env_file)
        print(describe(sandbox, env_file), flush=True)
        await stop.wait()
    print("sandbox stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    config, env_file = parse_args(argv)
    try:
        asyncio.run(run(config, env_file))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
