"""The command lines in French: argparse's words, and bounded numbers with a sentence saying what is expected."""

import difflib
import sys
from contextlib import contextmanager

# argparse's own words (the messages it looks up through gettext), in French.
ARGPARSE_FRENCH = {
    "usage: ": "utilisation : ",
    "show this help message and exit": "afficher cette aide",
    "argument %(argument_name)s: %(message)s": "%(argument_name)s : %(message)s",
    "invalid choice: %(value)r (choose from %(choices)s)": "« %(value)s » n'est pas une commande connue",
    "expected one argument": "il manque sa valeur",
    "not allowed with argument %s": "ne va pas avec %s",
    "ignored explicit argument %r": "ne prend pas de valeur (%r)",
    "ambiguous option: %(option)s could match %(matches)s": "%(option)s peut être %(matches)s",
    "one of the arguments %s is required": "il manque ce qu'il faut faire, l'une des options %s",
    "unrecognized arguments: %s": "option inconnue : %s",
}


def french_parser(**kwargs):
    """An argparse parser in French: its help, and each usage mistake as one sentence with the next step."""
    import argparse

    @contextmanager
    def in_french():
        english = argparse._  # gettext's: argparse looks its messages up through it.
        argparse._ = lambda message: ARGPARSE_FRENCH.get(message, message)
        try:
            yield
        finally:
            argparse._ = english

    class FrenchParser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            with in_french():
                super().__init__(*args, **kwargs)

        def parse_args(self, args=None, namespace=None):
            with in_french():
                self.refuse_unknown_options(sys.argv[1:] if args is None else args)
                return super().parse_args(args, namespace)

        def refuse_unknown_options(self, args):
            """Name a mistyped option first, with the nearest known one: before « il manque … » would hide it."""
            known = list(self._option_string_actions)
            commands = {name for action in self._actions for name in getattr(action, "_name_parser_map", ())}
            for arg in args:
                if arg in commands or arg == "--":
                    break  # What follows is the command's (stats.py report --days), or not an option.
                name = arg.partition("=")[0]
                if name.startswith("--") and not any(option.startswith(name) for option in known):  # Abbreviations.
                    near = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
                    self.error(f"option inconnue : {name}" + (f" (vouliez-vous dire {near[0]} ?)" if near else ""))

        def error(self, message):
            """One sentence, with where the help is; exit status 2, as argparse's."""
            self.exit(2, f"{self.prog} : {message} ; voir {self.prog} --help.\n")

    return FrenchParser(**kwargs)


def number_argument(low, high, what, kind=int):
    """An argparse type: a number from `low` to `high` (whole unless `kind` is float); else « … n'est pas `what` »."""

    def convert(text):
        import argparse

        try:
            value = kind(text.replace(",", ".")) if kind is float else int(text) if text.isdigit() else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:  # NaN too: it compares false.
            raise argparse.ArgumentTypeError(f"« {text} » n'est pas {what}")
        return value

    return convert
