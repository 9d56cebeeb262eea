"""Hostile nesting must end as a classified error, never a crashed worker: with a raised
recursion limit (as some libraries set), ``json.loads`` on 100,000 nested arrays overflows the C
stack, so the depth is checked first."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_deep_nesting_is_invalid_json_even_with_a_raised_recursion_limit() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.setrecursionlimit(1_000_000)
        from tokenmeta.errors import InvalidJSON
        from tokenmeta.metadata import parse_metadata
        try:
            parse_metadata(b"[" * 100_000 + b"]" * 100_000)
        except InvalidJSON as exc:
            print("InvalidJSON:", exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    assert "nests deeper than" in done.stdout


def test_brackets_inside_strings_do_not_count() -> None:
    from tokenmeta.metadata import parse_metadata

    doc = b'{"name": "' + b"[{" * 10_000 + b'", "attributes": [{"trait_type": "a", "value": 1}]}'
    assert parse_metadata(doc).data["attributes"][0]["value"] == 1
