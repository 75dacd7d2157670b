"""Entry point: a click group whose commands live in ``cmd_*.py`` modules beside this file.

The CLI is thin: it parses, calls the engine and turns :class:`HyperLDMError` into one line on
stderr and an exit status (no traceback unless ``--debug``). SIGTERM is turned into
:class:`Interrupted` so that ``with`` blocks remove temporary outputs (exit 143; Ctrl-C gives 130).
"""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys

import click

from hyperldm_engine import __version__, timings
from hyperldm_engine.errors import HyperLDMError, Interrupted
from hyperldm_engine.progress import emit_json


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="hyperldm-engine")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("--timings", "show_timings", is_flag=True,
              help="Print the split of wall time by phase on stderr (also with --debug).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, show_timings: bool) -> None:
    """HyperLDM: diverse, physically plausible hyperspectral cubes from georeferenced RGB."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register_commands() -> None:
    package = importlib.import_module(__package__ or "hyperldm_cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for command in getattr(module, "COMMANDS", ()):
                cli.add_command(command)


def _on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted("stopped by SIGTERM; no partial output was kept", exit_code=143)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and map errors to exit codes (2 input, 3 model, 4 output, 5 resource, 130/143 stop)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    json_mode = any(a == "--progress=json" or (a == "json" and i > 0 and argv[i - 1] == "--progress")
                    for i, a in enumerate(argv))
    signal.signal(signal.SIGTERM, _on_sigterm)
    timings.add("start-up: interpreter", timings.process_age() or 0.0)  # Python and the CLI's own imports
    try:
        with timings.phase("start-up: imports"):  # the commands' modules: torch, rasterio, the engine
            _register_commands()
        cli.main(args=argv, prog_name="hyperldm-engine", standalone_mode=False)
        if debug or "--timings" in argv:
            click.echo(timings.report(), err=True)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        if debug and isinstance(exc, KeyboardInterrupt):
            raise
        _fail("interrupted; no partial output was kept", 130, json_mode)
    except (click.ClickException, HyperLDMError) as exc:
        if debug:
            raise
        message = " ".join(exc.format_message().split()) if isinstance(exc, click.ClickException) else str(exc)
        ctx = getattr(exc, "ctx", None)
        if isinstance(exc, click.UsageError) and ctx is not None:
            message += f" (see '{ctx.command_path} --help')"
        _fail(message, exc.exit_code, json_mode)
    sys.exit(0)


def _fail(message: str, code: int, json_mode: bool) -> None:
    if json_mode:
        emit_json("error", message=message)
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
