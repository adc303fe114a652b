"""systemd's own value syntax for environments, as ``host/units.py`` resolves a unit with it:
word splitting with quotes and C escapes (``Environment=``), ``%`` specifiers, and the
``EnvironmentFile=`` format. Each function follows the systemd 252 source it names
(src/basic/extract-word.c, escape.c, env-util.c, env-file.c, src/core/load-fragment.c), and
tests/host/test_units_systemd.py checks the results against a real systemd.

Typical input (a drop-in AWS documents for proxies, and an environment file)::

    Environment="https_proxy=http://proxy.corp:3128" "no_proxy=169.254.169.254"
    EnvironmentFile=-/etc/sysconfig/proxy

    # /etc/sysconfig/proxy
    https_proxy='http://proxy.corp:3128'
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from gd_doctor.frozen import dataclass
from gd_doctor.patterns import lazy

_C_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "s": " ",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_ENV_NAME = lazy(r"[A-Za-z_][A-Za-z0-9_]*")


def _cunescape_one(text: str, i: int) -> Tuple[Optional[str], int]:
    """One C escape at ``text[i]`` (after the backslash): (character, length) or (None, 0)."""
    c = text[i] if i < len(text) else ""
    if c in _C_ESCAPES:
        return _C_ESCAPES[c], 1
    if c in _HEX_ESCAPES:
        digits = text[i + 1 : i + 1 + _HEX_ESCAPES[c]]
        if len(digits) == _HEX_ESCAPES[c] and all(d in "0123456789abcdefABCDEF" for d in digits):
            code = int(digits, 16)
            if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                return chr(code), 1 + len(digits)
        return None, 0
    if c in "01234567":
        digits = text[i : i + 3]
        if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) > 0:
            if int(digits, 8) < 256:
                return chr(int(digits, 8)), 3
        return None, 0
    return None, 0


def extract_words(value: str) -> Tuple[List[str], Optional[str]]:
    """Split a value as systemd's ``extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)`` does
    for ``Environment=``: whitespace separates words, quotes may start or stop anywhere in a
    word, C escapes count inside and outside quotes. On a syntax error (an unterminated quote, a
    bad escape) the words before it are kept and the error is returned: systemd keeps those
    too and ignores the rest of the line.

    >>> extract_words('"A=x y" B=\\\\"q\\\\" C=a"b c"d')
    (['A=x y', 'B="q"', 'C=ab cd'], None)
    >>> extract_words('A=1 "B=2')
    (['A=1'], 'unterminated quote')
    """
    words: List[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t\n\r":
            i += 1
        if i >= n:
            return words, None
        word: List[str] = []
        quote = ""
        while i < n:
            c = value[i]
            if c == "\\":
                ch, used = _cunescape_one(value, i + 1)
                if ch is None:
                    return words, f"bad escape at column {i + 1}"
                word.append(ch)
                i += 1 + used
            elif quote:
                if c == quote:
                    quote = ""
                else:
                    word.append(c)
                i += 1
            elif c in "'\"":
                quote = c
                i += 1
            elif c in " \t\n\r":
                break
            else:
                word.append(c)
                i += 1
        if quote:
            return words, "unterminated quote"
        words.append("".join(word))


def env_assignment_valid(word: str) -> bool:
    """systemd's ``env_assignment_is_valid``: a shell variable name, ``=``, a value without
    control characters other than tab and newline.

    >>> env_assignment_valid("https_proxy=http://p:3128"), env_assignment_valid("1X=y")
    (True, False)
    >>> env_assignment_valid("export A=b"), env_assignment_valid("A=\\x01")
    (False, False)
    """
    name, sep, val = word.partition("=")
    if not sep or not _ENV_NAME.fullmatch(name):
        return False
    return not any((ord(ch) < 32 and ch not in "\t\n") or ord(ch) == 127 for ch in val)


def _replace_env(pairs: List[Tuple[str, str]], name: str, value: str) -> None:
    """``strv_env_replace``: a later assignment of a name replaces the earlier one in place."""
    for i, (old, _) in enumerate(pairs):
        if old == name:
            pairs[i] = (name, value)
            return
    pairs.append((name, value))


#: Specifiers whose value is the same on every system manager (systemd.unit(5), "Specifiers").
_FIXED_SPECIFIERS = {
    "%": "%",
    "t": "/run",
    "S": "/var/lib",
    "C": "/var/cache",
    "L": "/var/log",
    "E": "/etc",
    "T": "/tmp",
    "V": "/var/tmp",
    "h": "/root",
    "u": "root",
    "U": "0",
    "g": "root",
    "G": "0",
    "s": "/bin/sh",
}
#: Specifiers systemd knows whose value depends on the running machine (left as they are).
_HOST_SPECIFIERS = frozenset("abBHlmMoqvwWAyYdD")


def _unit_name_specifiers(unit: str) -> Dict[str, str]:
    stem, _, _suffix = unit.rpartition(".")
    prefix, at, instance = stem.partition("@")
    return {
        "n": unit,
        "N": stem,
        "p": prefix,
        "P": prefix,
        "i": instance if at else "",
        "I": instance if at else "",
        "j": prefix.rsplit("-", 1)[-1],
        "J": prefix.rsplit("-", 1)[-1],
        "f": "/" + (instance if at else prefix),
    }


def resolve_specifiers(value: str, unit: str) -> Tuple[Optional[str], Optional[str]]:
    """Expand ``%`` specifiers as systemd does for ``Environment=`` and ``EnvironmentFile=``.

    Returns (value, None), or (None, error) for an unknown specifier: systemd ignores such an
    assignment ("Failed to resolve specifiers"). Machine-dependent ones (``%H``, ``%m``, ...)
    are kept as written.

    >>> resolve_specifiers("%t/%N.env", "amazon-guardduty-agent.service")
    ('/run/amazon-guardduty-agent.env', None)
    >>> resolve_specifiers("http://u:p%40ss@proxy:3128", "x.service")
    (None, 'unknown specifier %4')
    >>> resolve_specifiers("100%%", "x.service")
    ('100%', None)
    """
    names = _unit_name_specifiers(unit)
    out: List[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        spec = value[i + 1] if i + 1 < len(value) else ""
        if spec in names:
            out.append(names[spec])
        elif spec in _FIXED_SPECIFIERS:
            out.append(_FIXED_SPECIFIERS[spec])
        elif spec and spec in _HOST_SPECIFIERS:
            out.append("%" + spec)
        else:
            return None, f"unknown specifier %{spec}"
        i += 2
    return "".join(out), None


@dataclass(frozen=True)
class EnvironmentFileText:
    """The assignments of one ``EnvironmentFile=`` and the lines systemd would ignore."""

    pairs: Tuple[Tuple[str, str], ...] = ()
    errors: Tuple[str, ...] = ()


def parse_environment_file(text: str, path: str = "") -> EnvironmentFileText:
    """Parse an ``EnvironmentFile=`` as systemd's ``load_env_file()`` (env-file.c) does.

    ``KEY=VALUE`` lines; ``#`` and ``;`` start a comment only at the start of a line; single
    quotes keep everything, in double quotes a backslash escapes ``"``, ``\\``, ``$`` and a
    backquote, a backslash before a newline continues the value; quoted and unquoted parts of a
    value join (``A="x"y`` is ``xy``, and so is ``A="x" y``: blanks after a closing quote are
    skipped, which also makes a ``;`` after a quoted value part of it); trailing blanks of an
    unquoted value go. An
    assignment whose name is no valid variable name (``export A=1``) is ignored with a warning.

    >>> parse_environment_file('''# /etc/sysconfig/proxy
    ... https_proxy="http://proxy.corp:3128"
    ... NO_PROXY='169.254.169.254, .amazonaws.com'   ; not a comment
    ... export LANG=C
    ... A="x" y
    ... ''').pairs
    (('https_proxy', 'http://proxy.corp:3128'), ('NO_PROXY', '169.254.169.254, .amazonaws.com; \
not a comment'), ('A', 'xy'))
    """
    pairs: List[Tuple[str, str]] = []
    errors: List[str] = []
    state = "pre_key"
    key: List[str] = []
    val: List[str] = []
    key_ws: Optional[int] = None  # index where trailing whitespace of the key starts
    val_ws: Optional[int] = None
    line = 1

    def push() -> None:
        name = "".join(key[:key_ws] if key_ws is not None else key)
        value = "".join(val[:val_ws] if val_ws is not None else val)
        if env_assignment_valid(f"{name}={value}"):
            _replace_env(pairs, name, value)
        else:
            errors.append(f"{path}:{line}: invalid environment assignment, ignoring: {name[:80]}")

    for c in text.replace("\x00", ""):
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in " \t\n\r":
                state, key, val, key_ws = "key", [c], [], None
        elif state == "key":
            if c in "\n\r":
                errors.append(f"{path}:{line}: no '=' in line, ignoring")
                state = "pre_key"
            elif c == "=":
                state, val_ws = "pre_value", None
            else:
                if c not in " \t":
                    key_ws = None
                elif key_ws is None:
                    key_ws = len(key)
                key.append(c)
        elif state == "pre_value" or state == "value":
            if c in "\n\r":
                push()
                state = "pre_key"
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif state == "pre_value" and c in " \t":
                pass
            else:
                if c not in " \t":
                    val_ws = None
                elif val_ws is None:
                    val_ws = len(val)
                val.append(c)
                state = "value"
        elif state == "value_escape":
            state = "value"
            if c not in "\n\r":
                val.append(c)
                val_ws = None
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                val.append(c)
            val_ws = None
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                val.append(c)
            val_ws = None
        elif state == "double_escape":
            state = "double"
            if c in '"\\`$':
                val.append(c)
            elif c not in "\n\r":
                val.extend(("\\", c))
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in "\n\r":
                state = "pre_key"
        elif state == "comment_escape":
            state = "comment"
        if c == "\n":
            line += 1
    if state in ("pre_value", "value", "value_escape", "single", "double", "double_escape"):
        push()
    return EnvironmentFileText(tuple(pairs), tuple(errors))


def environment_from_settings(
    values: Sequence[str], unit: str
) -> Tuple[Tuple[Tuple[str, str], ...], Tuple[str, ...]]:
    """``Environment=`` lines (after resets) into ordered (name, value) pairs, as systemd's
    ``config_parse_environ``: words split and unescaped, specifiers expanded, invalid
    assignments ignored, a later assignment of a name replaces the earlier one in place.

    >>> pairs, errors = environment_from_settings(
    ...     ['"https_proxy=http://p:3128" A=1', "A=2 bad-name=x"], "x.service")
    >>> pairs
    (('https_proxy', 'http://p:3128'), ('A', '2'))
    >>> errors
    ('Environment=: invalid assignment, ignoring: bad-name=x',)
    """
    pairs: List[Tuple[str, str]] = []
    errors: List[str] = []
    for value in values:
        words, problem = extract_words(value)
        if problem:
            errors.append(f"Environment=: {problem}, ignoring the rest of: {value[:120]}")
        for word in words:
            resolved, bad = resolve_specifiers(word, unit)
            if resolved is None:
                errors.append(f"Environment=: {bad}, ignoring: {word.partition('=')[0][:80]}=…")
                continue
            if not env_assignment_valid(resolved):
                errors.append(f"Environment=: invalid assignment, ignoring: {resolved[:80]}")
                continue
            name, _, val = resolved.partition("=")
            _replace_env(pairs, name, val)
    return tuple(pairs), tuple(errors)


@dataclass(frozen=True)
class EnvironmentFileSetting:
    """One ``EnvironmentFile=`` entry: the path (may be a glob) and whether a leading ``-``
    lets the unit start when the file cannot be read."""

    path: str
    ignore_errors: bool


def environment_files_from_settings(
    values: Sequence[str], unit: str
) -> Tuple[Tuple[EnvironmentFileSetting, ...], Tuple[str, ...]]:
    """``EnvironmentFile=`` lines (after resets) as systemd's ``config_parse_unit_env_file``:
    specifiers expanded, ``//`` and ``/./`` simplified, relative paths and paths with ``..``
    ignored (systemd 252 logs "not absolute" / "not normalized" and drops the assignment).

    >>> files, errs = environment_files_from_settings(
    ...     ["-/etc/sysconfig/%N", "relative/x", "/etc//default/./proxy", "-/etc/../x"],
    ...     "a.service")
    >>> [(f.path, f.ignore_errors) for f in files]
    [('/etc/sysconfig/a', True), ('/etc/default/proxy', False)]
    >>> errs
    ('EnvironmentFile=: path is not absolute, ignoring: relative/x', \
'EnvironmentFile=: path is not normalized, ignoring: /etc/../x')
    """
    out: List[EnvironmentFileSetting] = []
    errors: List[str] = []
    for value in values:
        resolved, bad = resolve_specifiers(value, unit)
        if resolved is None:
            errors.append(f"EnvironmentFile=: {bad}, ignoring: {value[:120]}")
            continue
        ignore = resolved.startswith("-")
        path = resolved[1:] if ignore else resolved
        if not path.startswith("/"):
            errors.append(f"EnvironmentFile=: path is not absolute, ignoring: {path[:120]}")
            continue
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            errors.append(f"EnvironmentFile=: path is not normalized, ignoring: {path[:120]}")
            continue
        out.append(EnvironmentFileSetting("/" + "/".join(parts), ignore))
    return tuple(out), tuple(errors)
