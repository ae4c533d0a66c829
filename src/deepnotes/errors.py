"""The one exception type that reaches the user as a single line (exit code 2, no traceback)."""


class UserError(Exception):
    """Bad input from the user: unknown name, missing data, a file that is not what it should be.

    The message must say what was wrong and what would be right; the CLI prints it as
    `deepnotes: error: <message>` and exits with code 2.
    """


class DataError(UserError):
    """A dataset could not be found, downloaded or parsed (names the file or the places tried)."""
