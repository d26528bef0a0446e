"""The ``aliases:`` table: a name -> its variants, followed through variants that are
names themselves (``Zelensky: [Volodymyr Zelensky, ...]`` with ``Volodymyr Zelensky:
[...]``). Keys compare folded (``zelensky`` is ``Zelensky``). A cycle (a variant that
leads back to its own name) is a config error, found by ``cycles``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.language.forms import fold

Aliases = Mapping[str, Sequence[str]]


def _key(text: str) -> str:
    return " ".join(fold(text).split())


def expand(aliases: Aliases) -> dict[str, tuple[str, ...]]:
    """Folded name -> every variant it stands for (transitively, each once, in order)."""
    table = {_key(name): list(variants) for name, variants in aliases.items()}
    expanded: dict[str, tuple[str, ...]] = {}
    for name in table:
        seen, order, stack = {name}, [], list(reversed(table[name]))
        while stack:
            variant = stack.pop()
            key = _key(variant)
            if key in seen:
                continue
            seen.add(key)
            order.append(variant)
            stack += reversed(table.get(key, ()))
        expanded[name] = tuple(order)
    return expanded


def lookup(table: Mapping[str, tuple[str, ...]], phrase: str) -> tuple[str, ...]:
    """The variants of ``phrase`` when it is a name of the table, else ()."""
    return table.get(_key(phrase), ())


def cycles(aliases: Aliases) -> list[tuple[str, int, list[str]]]:
    """Each variant that leads back to its own name: (name, variant index, the path)."""
    names = {_key(name): name for name in aliases}
    found = []
    for name, variants in aliases.items():
        for index, variant in enumerate(variants):
            path = _path_back(aliases, names, _key(name), variant)
            if path is not None:
                found.append((name, index, [name, *path]))
    return found


def _path_back(aliases: Aliases, names: Mapping[str, str], home: str, start: str) -> list[str] | None:
    """The chain of names from ``start`` back to ``home``, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        variant, path = stack.pop()
        key = _key(variant)
        if key == home:
            return path
        if key in seen or key not in names:
            continue
        seen.add(key)
        stack += [(v, [*path, v]) for v in aliases[names[key]]]
    return None
