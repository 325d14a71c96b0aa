"""The one exception type users see: its message is printed as a single line, exit code 2."""


class CunetError(ValueError):
    """A problem with the user's input (file, hint, option) rather than a bug in cunet.

    A ValueError, so that API callers who catch bad values the usual way catch these too.
    """


class ImageTooLarge(CunetError):
    """A photo over a pixel limit, found from its header before decoding (the web app answers 413)."""
