"""Stopping a long run cleanly on SIGTERM/SIGINT: the first signal asks the loop to stop
after the current iteration (so it can write a checkpoint), a second one acts at once."""
from __future__ import annotations

import contextlib
import signal
import threading


class StopRequest:
    """Set by SIGTERM or SIGINT; the loop checks it between iterations."""
    def __init__(self):
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def reraise(self) -> None:
        """End the process as the signal would have without us (handlers are restored by now)."""
        signal.raise_signal(self.signal)


@contextlib.contextmanager
def stop_on_signals(enabled: bool):
    """While active, the first SIGTERM/SIGINT only requests a stop (so the loop can write a
    checkpoint); a second one acts at once. Python allows handlers in the main thread only."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, frame):
        if request.signal is not None:  # asked twice: stop now
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
            return
        request.signal = signum

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
