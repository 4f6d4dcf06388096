"""
`--wait`: poll GET /environments/{name} until the environment settles, at the pace the API asks for
(Retry-After), and show where it is: on a terminal one live line (spinner, status, the workflow's current
step when the API reports `progress.step`, elapsed time), elsewhere (CI logs, pipes) one plain line per
change. Everything goes to stderr, so that --json output on stdout stays clean.
"""
import shutil
import sys
import time
from typing import Callable, Optional, Tuple

from .api import Api, Response
from .errors import CliError, Exit

#: For each operation: the status that ends it well, and the one that ends it badly.
GOALS = {"create": ("READY", "CREATE_FAILED"), "delete": ("DELETED", "DELETE_FAILED"),
         # A resize ends READY either way: with the new spec, or the previous one and a statusReason (the caller tells).
         "resize": ("READY", "READY")}
#: What goes on when a wait is interrupted.
_GOING_ON = {"create": "created", "delete": "deleted", "resize": "resized"}
#: Seconds between polls when the API names none (it sends Retry-After with every 202).
DEFAULT_POLL_SECONDS = 10.0
#: However long the API asks to wait, look again at least this often.
MAX_POLL_SECONDS = 60.0
_FRAME_SECONDS = 0.1


def format_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe(environment: dict) -> str:
    """Status and, when the API reports it, the step the workflow is in."""
    status = str(environment.get("status", "?"))
    progress = environment.get("progress")
    step = progress.get("step") if isinstance(progress, dict) else None
    return f"{status} · {step}" if step else status


class Display:
    """The live line on a terminal, or plain lines elsewhere."""

    def __init__(self, name: str, stream=None, live: Optional[bool] = None, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.clock = clock
        self.started = clock()
        self.frame = 0
        self.last: Optional[str] = None
        encoding = (getattr(self.stream, "encoding", None) or "").lower()
        self.spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" if "utf" in encoding else "|/-\\"
        self.dot = "·" if "utf" in encoding else "-"

    def elapsed(self) -> str:
        return format_elapsed(self.clock() - self.started)

    def show(self, environment: dict, note: str = "") -> None:
        state = describe(environment).replace("·", self.dot)
        if self.live:
            self.frame += 1
            spin = self.spinner[self.frame % len(self.spinner)]
            line = f"{spin} {self.name} {state}{note}  {self.elapsed()}"
            width = shutil.get_terminal_size((80, 20)).columns - 1
            self.stream.write("\r\x1b[2K" + line[:width])
            self.stream.flush()
        elif state + note != self.last:
            self.stream.write(f"[{self.elapsed()}] {self.name} {state}{note}\n")
            self.stream.flush()
        self.last = state + note

    def clear(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def finish(self, message: str) -> None:
        self.clear()
        self.stream.write(message + "\n")
        self.stream.flush()


def wait_for(
    api: Api,
    name: str,
    operation: str,
    first: Response,
    timeout: float,
    display: Display,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Tuple[Exit, dict]:
    """
    Polls until the environment reaches the operation's end (or the timeout). Returns the exit code and the
    last environment seen; the caller prints it. A deleted environment whose record has expired answers 404,
    which counts as DELETED.
    """
    done, failed = GOALS[operation]
    environment = first.body if isinstance(first.body, dict) else {"name": name, "status": "?"}
    delay = first.retry_after() or DEFAULT_POLL_SECONDS
    deadline = clock() + timeout
    note = ""
    try:
        while environment.get("status") not in (done, failed):
            display.show(environment, note)
            remaining = deadline - clock()
            if remaining <= 0:
                display.finish(
                    f"mfenv: gave up waiting after {display.elapsed()}: {name} is still {environment.get('status')}. "
                    f"It goes on without you: mfenv show {name} tells where it is."
                )
                return Exit.TIMEOUT, environment
            pause_until = clock() + min(delay, MAX_POLL_SECONDS, remaining)
            while True:
                left = pause_until - clock()
                if left <= 0:
                    break
                # On a terminal the spinner turns while waiting; elsewhere nothing is printed until a change.
                sleep(min(_FRAME_SECONDS, left) if display.live else left)
                if display.live:
                    display.show(environment, note)
            try:
                response = api.request("GET", f"/environments/{name}", ok=(200, 404))
            except CliError as error:
                if error.code != Exit.NETWORK:
                    raise
                # A long wait should survive a dropped connection; the timeout still bounds it.
                note = " (connection lost, retrying)"
                continue
            note = ""
            if response.status == 404:
                if operation == "delete":
                    environment = {**environment, "status": done, "progress": None}
                    break
                raise CliError(f"{name} disappeared while it was being {_GOING_ON[operation]}: mfenv list shows what you have.")
            environment = response.body if isinstance(response.body, dict) else environment
            delay = response.retry_after() or delay
    except KeyboardInterrupt:
        display.clear()
        raise CliError(
            f"Stopped waiting; {name} goes on being {_GOING_ON[operation]}: "
            f"mfenv show {name} tells where it is.",
            Exit.INTERRUPTED,
        ) from None
    if failed != done and environment.get("status") == failed:
        reason = environment.get("statusReason") or "no reason was given"
        display.finish(f"mfenv: {name} is {failed} after {display.elapsed()}: {reason}")
        return Exit.FAILED, environment
    display.finish(f"{name} is {done} after {display.elapsed()}.")
    return Exit.OK, environment
