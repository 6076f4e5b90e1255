"""The one exception type that carries a message a user can act on."""


class GraderError(Exception):
    """A problem with the user's input, stated so they can fix it.

    The CLI turns it into exit code 2 with ``message`` and ``hint`` printed; grading turns it into
    ``status: error`` in results.json.

    Attributes:
        message: what is wrong, naming the file or value at fault.
        hint: what to do about it (may be empty).
    """

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message
