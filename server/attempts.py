"""Failed sign-ins, counted per account and per address, shared by every worker and server.

After ``LIMIT`` failures in ``WINDOW_S`` seconds an account (or an address) is refused
with 429 until the oldest of them leaves the window — even with the right password,
or the limit would only slow a guesser down.

The counts are kept by the accounts backend (``geodata.store.accounts``): a SQLite table
in the data directory, shared by the workers of one machine, or a table of the database
every instance shares, so failures through any of them count together.  Flask-Limiter's
storages were the alternative: in memory each worker would count apart (2 workers,
twice the tries), and redis/memcached/mongo would be a second service to run for
this alone.  A try is also *reserved* before the password is checked, in one
write transaction: many guesses sent at once cannot all pass a check made at the
same count, which a count-after-the-answer limiter lets through.
"""

from __future__ import annotations

import logging
import time

from geodata.errors import ServiceUnavailable, TooManyRequests
from geodata.i18n import says
from geodata.store.accounts import Accounts

log = logging.getLogger(__name__)

LIMIT = 5
WINDOW_S = 15 * 60


class Attempts:
    """``reserve`` a try before checking a secret; ``clear`` the tries it cost once it proved right."""

    def __init__(self, accounts: Accounts, limit: int = LIMIT, window_s: float = WINDOW_S):
        self.accounts = accounts
        self.limit, self.window_s = limit, window_s
        self.clock = time.time  # tests move it on

    def reserve(self, scope: str, name: str, address: str) -> None:
        """Count one try for ``name`` (if any) and ``address``; TooManyRequests if either is used up.

        The try counts as a failure until ``clear`` takes it back.  If the counts cannot be kept
        (disk full, unreadable file, database down) nobody is let try: 503, not an unlimited sign-in.
        """
        try:
            wait = self.accounts.reserve_try(scope, name, address, now=self.clock(), window_s=self.window_s,
                                             limit=self.limit)
        except Exception as e:  # whatever the backend's trouble: no count, no try
            log.error("cannot count failed attempts: %s", e)
            raise ServiceUnavailable(says("auth.attempts_unavailable"), retry_after=60) from e
        if wait is not None:
            raise TooManyRequests(says("auth.too_many", seconds=wait), retry_after=wait)

    def clear(self, scope: str, name: str, address: str) -> None:
        """The secret was right: forget this address's failures for ``name`` (not for other names)."""
        try:
            self.accounts.clear_tries(scope, name, address)
        except Exception as e:  # the sign-in stands; its try stays counted until the window passes
            log.error("cannot clear failed attempts: %s", e)
