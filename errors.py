"""The one exception type for mistakes a user can fix.

`train.py` and `generate.py` print its message and exit non-zero instead of showing a traceback.
"""


class UserInputError(ValueError):
    """A bad option, file, checkpoint or prompt: the message names the problem and the fix."""
