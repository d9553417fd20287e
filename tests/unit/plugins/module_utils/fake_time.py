"""A clock for the transport's and the quotas' waits in unit tests."""


class FakeTime:
    """A clock that moves only when something sleeps: waits are recorded, never spent."""

    def __init__(self, now=1000.0):
        self.now = now
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
