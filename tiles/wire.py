"""The Protocol Buffers wire format, written for many messages at once with numpy.

``n`` messages of the same fields are laid out together: each :class:`Field` knows its length in every
message, so where each field of each message starts follows from one cumulative sum, and each field is then
written for all messages in a few numpy operations instead of ``n`` trips through Python. Only what MVT needs
is here: varints (zigzag for signed values), length-delimited fields and raw bytes
(https://protobuf.dev/programming-guides/encoding/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

VARINT, FIXED64, LENGTH_DELIMITED = 0, 1, 2
_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)
_Int = TypeVar("_Int", bound=np.integer[Any])


class Ragged(NamedTuple, Generic[_Int]):
    """One run of ``data`` per item: item ``i`` is the next ``lengths[i]`` values (bytes, or integers to encode)."""

    data: NDArray[_Int]
    lengths: NDArray[np.int64]

    @classmethod
    def fixed(cls, data: ArrayLike, width: int) -> Ragged[Any]:
        """Items of ``width`` values each, taken in order from ``data``."""
        data = np.asarray(data)
        return cls(data, np.full(data.size // width, width, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.lengths)

    def starts(self) -> NDArray[np.int64]:
        return np.cumsum(self.lengths) - self.lengths

    def take(self, index: NDArray[np.int64]) -> Ragged[_Int]:
        """The items at ``index``, in that order."""
        lengths = self.lengths[index]
        return Ragged(self.data[_spread(self.starts()[index], lengths)], lengths)

    def group(self, counts: NDArray[np.int64]) -> Ragged[_Int]:
        """Consecutive items joined: the first ``counts[0]`` items make item 0, the next ``counts[1]`` item 1, ..."""
        ends = np.concatenate([[0], np.cumsum(self.lengths)])[np.cumsum(counts)]
        return Ragged(self.data, np.diff(ends, prepend=0).astype(np.int64))


class Field(NamedTuple):
    """One field of ``n`` messages: its length in each (0: absent) and either how to write it, given where it
    starts in each message's bytes, or its bytes (all messages' in order)."""

    lengths: NDArray[np.int64]
    write: Callable[[NDArray[np.uint8], NDArray[np.int64]], None] | None = None
    data: NDArray[np.uint8] | None = None


def zigzag(values: ArrayLike) -> NDArray[np.uint64]:
    """Signed 64-bit integers as protobuf ``sint64`` maps them to unsigned ones (0, -1, 1, -2 -> 0, 1, 2, 3)."""
    v = np.asarray(values, dtype=np.int64)
    return ((v << 1) ^ (v >> 63)).view(np.uint64)


def varint_lengths(values: ArrayLike) -> NDArray[np.int64]:
    """Bytes of each unsigned value as a varint (1 to 10)."""
    return np.searchsorted(_VARINT_LIMITS, np.asarray(values, dtype=np.uint64), side="right").astype(np.int64) + 1


def varints(values: ArrayLike) -> Ragged[np.uint8]:
    """One varint per unsigned value: 7 bits a byte, least significant first, the top bit set on all but the
    last byte."""
    values = np.asarray(values, dtype=np.uint64).ravel()
    lengths = varint_lengths(values)
    out = np.empty(int(lengths.sum()), dtype=np.uint8)
    _put_varints(out, np.cumsum(lengths) - lengths, values, lengths)
    return Ragged(out, lengths)


def _put_varints(out: NDArray[np.uint8], at: NDArray[np.int64], values: NDArray[np.uint64],
                 lengths: NDArray[np.int64]) -> None:
    while len(values):
        more = lengths > 1
        out[at] = (values & np.uint64(0x7F)).astype(np.uint8) | (more.astype(np.uint8) << 7)
        values, at, lengths = values[more] >> np.uint64(7), at[more] + 1, lengths[more] - 1


def _spread(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.int64]:
    """Every position of runs of ``lengths`` starting at ``starts``, run after run."""
    total = int(lengths.sum())
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)


def raw(value: bytes, present: NDArray[np.bool_]) -> Field:
    """The same bytes in the messages where ``present``."""
    data = np.frombuffer(value, dtype=np.uint8)

    def write(out: NDArray[np.uint8], at: NDArray[np.int64]) -> None:
        at = at[present]
        for i, byte in enumerate(data):
            out[at + i] = byte

    return Field(np.where(present, len(value), 0).astype(np.int64), write)


def uvarint(values: ArrayLike, present: NDArray[np.bool_] | None = None) -> Field:
    """An unsigned varint per message (where ``present``)."""
    values = np.asarray(values, dtype=np.uint64)
    lengths = varint_lengths(values)
    if present is not None:
        lengths = np.where(present, lengths, 0)

    def write(out: NDArray[np.uint8], at: NDArray[np.int64]) -> None:
        sel = lengths > 0
        _put_varints(out, at[sel], values[sel], lengths[sel])

    return Field(lengths, write)


def runs(items: Ragged[np.uint8]) -> Field:
    """Each message's run of bytes from ``items``."""
    return Field(items.lengths, data=items.data)


def tag(number: int, wire_type: int, present: NDArray[np.bool_]) -> Field:
    """The key that starts field ``number`` in the messages where ``present``."""
    return raw(varint(number << 3 | wire_type), present)


def varint_field(number: int, values: ArrayLike, present: NDArray[np.bool_]) -> list[Field]:
    return [tag(number, VARINT, present), uvarint(values, present)]


def delimited(number: int, fields: Sequence[Field], present: NDArray[np.bool_] | None = None) -> list[Field]:
    """Field ``number`` holding the bytes of ``fields`` (a packed array, a string or an embedded message), in the
    messages where ``present`` (all when not given)."""
    size: NDArray[np.int64] = np.stack([f.lengths for f in fields]).sum(axis=0, dtype=np.int64)
    present = np.ones(len(size), dtype=np.bool_) if present is None else present
    return [tag(number, LENGTH_DELIMITED, present), uvarint(size, present), *fields]


def write(fields: Sequence[Field]) -> Ragged[np.uint8]:
    """The bytes of each message made of ``fields`` (at most 256), in order."""
    lengths = np.stack([f.lengths for f in fields], axis=1)
    flat = lengths.ravel()
    at = (np.cumsum(flat) - flat).reshape(lengths.shape)
    out = np.empty(int(flat.sum()), dtype=np.uint8)
    owner = None
    for j, f in enumerate(fields):
        if f.write is not None:
            f.write(out, at[:, j])
        elif f.data is not None and f.data.size:
            # a run lands where a mask of its field's bytes says: cheaper than an index per byte
            if owner is None:
                owner = np.repeat(np.tile(np.arange(len(fields), dtype=np.uint8), len(lengths)), flat)
            out[owner == j] = f.data
    return Ragged(out, lengths.sum(axis=1))


def varint(value: int) -> bytes:
    """One unsigned value as a varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def delimited_bytes(number: int, payload: bytes) -> bytes:
    """One length-delimited field."""
    return varint(number << 3 | LENGTH_DELIMITED) + varint(len(payload)) + payload
