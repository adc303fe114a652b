"""Pure parsers: text in, typed values out, no I/O (each has a doctest on real input)."""
