"""The URLs an HTML page loads from its tags (script/link/img/iframe sources), read with the standard parser."""

from __future__ import annotations

from html.parser import HTMLParser

_LOADING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "embed": "src"}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        name = _LOADING.get(tag)
        for key, value in attrs:
            if key == name and value:
                self.refs.append(value)


def loaded_refs(html: str) -> list[str]:
    """Every URL the page's own tags make the browser load (script code is not parsed as tags)."""
    parser = _Refs()
    parser.feed(html)
    return parser.refs


def external(refs: list[str]) -> list[str]:
    return [r for r in refs if r.startswith(("http:", "https:", "//"))]
