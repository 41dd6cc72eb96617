"""The telephone line's tools: recorded prompts and a call in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from yibao.cli.common import app, fail, services
from yibao.config import get_settings

if TYPE_CHECKING:
    pass

ivr_app = typer.Typer(help="telephone line 电话查询", no_args_is_help=True)
app.add_typer(ivr_app, name="ivr")


@ivr_app.command("prompts")
def ivr_prompts(
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", help="directory; default YIBAO_IVR_PROMPT_DIR or var/"),
    ] = None,
) -> None:
    """Render every fixed prompt to WAV (8 kHz mono) in both languages with espeak-ng."""

    from yibao.channels.ivr import audio
    from yibao.channels.ivr.common import prompt_dir

    folder = Path(output) if output else prompt_dir(get_settings())
    try:
        made = audio.render_prompts(folder)
    except audio.NoSpeechEngine as exc:
        fail(str(exc))
    typer.echo(f"{len(made)} prompts written to {folder}")


@app.command()
def phone(
    sound: Annotated[
        bool | None,
        typer.Option(
            "--sound/--no-sound", help="speak the prompts; default: if a sound device exists"
        ),
    ] = None,
) -> None:
    """A telephone call in the terminal: type keypad digits, an empty line is silence."""
    from yibao.channels.ivr import simulator

    def read() -> str | None:
        try:
            return input()
        except EOFError:
            return None

    with services() as svc:
        simulator.run(
            svc,
            read=read,
            write=typer.echo,
            sound=simulator.sound_available() if sound is None else sound,
        )
