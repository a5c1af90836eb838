"""A small, safe XML tree builder on expat, for one Windows event at a time.

Safety (ARCHITECTURE decision 7): the parser refuses any DOCTYPE, entity declaration or
external entity reference (``UnsafeXml``), never resolves external resources, and parameter
entities are off; an undefined entity is expat's "undefined entity" error. This is the
same protection defusedxml gives, at about half its cost per event (defusedxml builds
its trees with the pure-Python ElementTree parser). Namespace prefixes are dropped from
names: Windows event XML never needs them.
"""

from __future__ import annotations

import pyexpat
from collections.abc import Iterator

ExpatError = pyexpat.ExpatError


#: Deepest element nesting accepted in one event (Windows events have about five
#: levels); the tree is walked recursively afterwards, so deeper input is refused.
MAX_DEPTH = 64


class UnsafeXml(ValueError):
    """The XML declares a DTD or entities, or refers to an external entity."""


class TooDeep(ValueError):
    """The event nests elements deeper than ``MAX_DEPTH``."""


class Node:
    __slots__ = ("attrs", "children", "name", "parts")

    def __init__(self, name: str, attrs: dict[str, str]) -> None:
        self.name = name
        self.attrs = attrs
        self.children: list[Node] = []
        self.parts: list[str] = []

    def get(self, attr: str) -> str | None:
        return self.attrs.get(attr)

    @property
    def text(self) -> str:
        """This element's own character data (for a leaf: all of its text)."""
        return "".join(self.parts)

    def itertext(self) -> Iterator[str]:
        yield from self.parts
        for child in self.children:
            yield from child.itertext()

    def __iter__(self) -> Iterator[Node]:
        return iter(self.children)

    def __len__(self) -> int:
        return len(self.children)


def _refuse_dtd(*_args: object) -> None:
    raise UnsafeXml("DOCTYPE declarations are not allowed")


def _refuse_entity(*_args: object) -> None:
    raise UnsafeXml("entity declarations are not allowed")


def _refuse_external(*_args: object) -> int:
    raise UnsafeXml("external entity references are not allowed")


def parse(data: bytes) -> Node:
    """The root element of ``data``; ``UnsafeXml`` or ``ExpatError`` when refused/broken."""
    parser = pyexpat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    top = Node("", {})
    stack = [top]
    push = stack.append

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) > MAX_DEPTH:
            raise TooDeep(f"elements nested deeper than {MAX_DEPTH} levels: not read")
        node = Node(name.rpartition(":")[2], attrs)
        stack[-1].children.append(node)
        push(node)

    def end(_name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        stack[-1].parts.append(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.Parse(data, True)
    return top.children[0]
