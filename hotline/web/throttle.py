"""Growing delays after failed sign-ins, per account name and per client address.

No hard lock that anyone could trigger against anyone: after a few free failures, each
further attempt must wait a little longer (1 s, 2 s, 4 s … up to a quarter of an hour) after
the last failure; an attempt inside the wait is refused without checking the password.
Unknown names are counted exactly as known ones, so the answers tell nothing about which
accounts exist. A success clears the account's count, not the address's.

The counts live in this process: with N server processes an attacker gets N times the
attempts (with four processes and the defaults, about 4 × 13 guesses an hour per account
once the delay has reached its cap), and a restart forgets them.
"""

import threading
from datetime import datetime, timedelta

# Failures before the delays start: an account's, and an address's (offices share addresses).
FREE_PER_ACCOUNT = 3
FREE_PER_ADDRESS = 20
MAX_DELAY = timedelta(minutes=15)
# Counts idle this long are forgotten.
FORGET_AFTER = timedelta(hours=24)
_MAX_ENTRIES = 100_000


def delay_after(failures: int, free: int) -> timedelta:
    """The wait after the last failure once `failures` have been counted."""
    if failures < free:
        return timedelta(0)
    return min(timedelta(seconds=2 ** (failures - free)), MAX_DELAY)


class LoginThrottle:
    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, datetime]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        return f"account:{username.strip().casefold()}", f"address:{address}"

    def _free(self, key: str) -> int:
        return FREE_PER_ACCOUNT if key.startswith("account:") else FREE_PER_ADDRESS

    def wait(self, keys: tuple[str, ...], now: datetime) -> int:
        """Whole seconds until these keys may try again (0: now)."""
        longest = timedelta(0)
        with self._lock:
            for key in keys:
                failures, last = self._failures.get(key, (0, now))
                longest = max(longest, last + delay_after(failures, self._free(key)) - now)
        return 0 if longest <= timedelta(0) else max(1, round(longest.total_seconds() + 0.49))

    def failed(self, keys: tuple[str, ...], now: datetime) -> None:
        with self._lock:
            for key in keys:
                failures, _ = self._failures.get(key, (0, now))
                self._failures[key] = (failures + 1, now)
            if len(self._failures) > _MAX_ENTRIES:
                self._failures = {k: v for k, v in self._failures.items() if now - v[1] < FORGET_AFTER}

    def succeeded(self, account_key: str) -> None:
        with self._lock:
            self._failures.pop(account_key, None)

    def account(self, username: str, now: datetime) -> tuple[int, datetime | None]:
        """An account's failures counted, and until when it must wait (None: it need not)."""
        key = self.keys(username, "")[0]
        with self._lock:
            failures, last = self._failures.get(key, (0, now))
        until = last + delay_after(failures, FREE_PER_ACCOUNT)
        return failures, until if until > now else None

    def clear_account(self, username: str) -> None:
        """An administrator lifts an account's delay (or set a new password)."""
        self.succeeded(self.keys(username, "")[0])
