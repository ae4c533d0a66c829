"""Stand-ins the tests share for what this machine cannot reach (a server's response)."""

import io


class ZeroBody(io.RawIOBase):
    """A response body of `total` zero bytes, made as they are read (a file of any size without
    the memory); `sent` counts what was read of it, `headers` are the response's."""

    def __init__(self, total: int, headers=None):
        self.total, self.sent, self.headers = total, 0, headers or {}

    def readable(self):
        return True

    def read(self, n=-1):
        n = self.total - self.sent if n is None or n < 0 else min(n, self.total - self.sent)
        self.sent += n
        return bytes(n)

    def __exit__(self, *exc):
        return False
