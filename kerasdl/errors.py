"""The errors kerasdl raises for problems the user can fix.

The CLI turns every `KerasdlError` into a one-line message on stderr and exits
with the error's `exit_code`, in one place (`kerasdl.cli.main`).
"""


class KerasdlError(Exception):
    """A problem with the user's input, data or files (exit code 1)."""

    exit_code = 1


class UsageError(KerasdlError):
    """A bad command-line value or setting (exit code 2, like Click's usage errors)."""

    exit_code = 2


class DataError(KerasdlError):
    """Data that cannot be found, read or used for the recipe's task."""


class RecipeError(UsageError):
    """A recipe name that does not exist, or a recipe that breaks the recipe contract."""


class RunError(KerasdlError):
    """A run directory or model file that cannot be used."""


class NonFiniteLoss(KerasdlError):
    """The training loss became NaN or infinite."""
