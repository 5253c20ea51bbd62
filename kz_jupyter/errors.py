"""The one exception users of the client see: a message that says what to do."""


class KzError(RuntimeError):
    """A request kz-jupyter could not carry out; str(error) is a one-line explanation."""
