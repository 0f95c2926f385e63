"""argparse's own words, listed so that extraction puts them in our catalogue.

Nothing imports this module: ``i18n.translate_argparse`` routes argparse's gettext calls
to our catalogue, and these are the messages of argparse a user of ``cmfnet`` can meet
(the exact English of Python 3.10 to 3.13, which are the keys argparse looks up).
"""
from .i18n import N_


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    return singular, plural


MESSAGES = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("optional arguments"),  # Python 3.9 and earlier
    N_("show this help message and exit"),
    N_("show program's version number and exit"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("unrecognized arguments: %s"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_plural("expected %s argument", "expected %s arguments"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("unexpected option string: %s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("can't open '%(filename)s': %(error)s"),
)
