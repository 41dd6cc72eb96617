"""``yibao phone``: the dialog as a caller meets it, in a terminal, for demos
and for training support staff. Prompts are printed (and spoken when a sound
device exists); keypad digits are typed, an empty line is silence."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from yibao.channels.ivr.audio import VOICES
from yibao.runtime import Services
from yibao.services.inquiry import dialog as ivr_service


def sound_available() -> bool:
    return bool(shutil.which("espeak-ng")) and (
        Path("/dev/snd").exists() or bool(os.environ.get("PULSE_SERVER"))
    )


def _speak(turn: ivr_service.Turn) -> None:
    engine = shutil.which("espeak-ng")
    if engine is None:
        return
    for part in turn.speech:
        subprocess.run(  # noqa: S603 - a fixed program, the text as one argument
            [engine, "-v", VOICES[part.lang], "-s", "150", part.text],
            check=False,
            capture_output=True,
        )


def run(
    svc: Services,
    *,
    read: Callable[[], str | None],
    write: Callable[[str], None],
    sound: bool = False,
    caller: str = "simulator",
) -> str:
    """Run one call; returns the call id. ``read`` gives the next keypad line
    (``None`` at end of input: the caller hangs up)."""
    call_id = "sim-" + secrets.token_urlsafe(9)
    write(f"[call {call_id}]")
    turn = ivr_service.start_call(svc.uow(), call_id=call_id, caller=caller, platform="sim")
    while True:
        for part in turn.speech:
            write(f"  ({part.lang}) {part.text}")
        if sound:
            _speak(turn)
        if turn.transfer:
            write(
                f"[transferred to the agent at {turn.transfer}; the console reads call {call_id}]"
            )
            return call_id
        if turn.hangup:
            write("[hung up 已挂断]")
            return call_id
        line = read()
        if line is None:
            write("[caller hung up 来电方挂断]")
            return call_id
        keys = line.strip()
        write(f"> {keys}" if keys else "> (silence 无按键)")
        turn = ivr_service.step(svc.uow(), call_id=call_id, digits=keys or None)
