"""How a peer's free text is shown: one line, no terminal escapes, bounded."""

from __future__ import annotations

import pytest

from cred_helper.errors import server_text


@pytest.mark.parametrize(("text", "limit", "shown"), [
    ("not on call", 300, "not on call"),
    ("two\nlines\r\n  and\ttabs", 300, "two lines and tabs"),
    ("\x1b[31mred\x1b[0m \x07bell \x9bcsi", 300, "?[31mred?[0m ?bell ?csi"),
    ("x" * 500, 300, "x" * 300),
    ("\u202eright-to-left override", 300, "?right-to-left override"),
    ("", 300, ""),
])
def test_server_text(text, limit, shown):
    assert server_text(text, limit) == shown
