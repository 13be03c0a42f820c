"""Test helpers that rewrite valid BER into other valid BER: the same values with
indefinite lengths, or with non-minimal long-form lengths, as other encoders send them."""

from __future__ import annotations


def _elements(data: bytes, pos: int, end: int) -> list[tuple[int, bool, bytes]]:
    """Split definite-length minimal BER into (tag, constructed, content) triples."""
    out = []
    while pos < end:
        tag = data[pos]
        first = data[pos + 1]
        pos += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        out.append((tag, bool(tag & 0x20), data[pos : pos + length]))
        pos += length
    return out


def _rewrite(data: bytes, header: bytes, indefinite: bool, octets: int) -> bytes:
    out = bytearray(header)
    for tag, constructed, content in _elements(data, 0, len(data)):
        if constructed:
            inner = _rewrite(content, b"", indefinite, octets)
            if indefinite:
                out += bytes((tag, 0x80)) + inner + b"\x00\x00"
                continue
            content = inner
        out += bytes((tag, 0x80 | octets)) + len(content).to_bytes(octets, "big") + content
    return bytes(out)


def with_indefinite_lengths(contents: bytes) -> bytes:
    """IE contents (profile octet first) with every constructed element indefinite;
    primitive elements keep a definite length (X.690 §8.1.3.2)."""
    return _rewrite(contents[1:], contents[:1], indefinite=True, octets=1)


def with_long_form_lengths(contents: bytes, octets: int = 2) -> bytes:
    """IE contents with every length in the long form using ``octets`` length octets."""
    return _rewrite(contents[1:], contents[:1], indefinite=False, octets=octets)
