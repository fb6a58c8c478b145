"""Reading the ``.npy`` members of a checkpoint's zip with every declared size checked
before anything is allocated or inflated.

NumPy's own ``.npz`` reader trusts what a member says about itself: it allocates
the array its ``.npy`` header declares before reading a byte, and inflates a
deflated member as far as it goes, so a crafted file of a few megabytes can make a
load allocate gigabytes. :class:`Members` checks first:

* only stored (uncompressed) and deflated members are read; a stored member must
  declare the same size compressed and uncompressed, and every member must lie
  inside the file;
* a ``.npy`` header's shape times item size plus the header's length must equal
  the member's declared size, so an array is never allocated larger than the
  member that fills it;
* a deflated member can inflate beyond the file's size, so the declared sizes of
  the deflated members read must stay within ``max_inflated_bytes``.

Arrays are then read straight into their final buffer in bounded chunks (one copy);
:mod:`zipfile` checks each member's CRC when it reaches the member's end.
"""
from __future__ import annotations

import math
import zipfile

import numpy
from numpy.lib import format as npy_format

_CHUNK = 1 << 20


class MemberError(ValueError):
    """A member is missing, malformed, or declares sizes that do not add up."""


class Members:
    """The ``.npy`` members of an open zip file object ``fobj``."""

    def __init__(self, fobj, max_inflated_bytes):
        start = fobj.tell()
        fobj.seek(0, 2)
        self.file_size = fobj.tell() - start
        fobj.seek(start)
        self.max_inflated_bytes = int(max_inflated_bytes)
        self._zip = zipfile.ZipFile(fobj)
        self._infos = {}
        for info in self._zip.infolist():
            if info.filename in self._infos:
                raise MemberError(f"the zip holds two members named {info.filename!r}")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise MemberError(f"member {info.filename!r} uses zip compression method "
                                  f"{info.compress_type}; only stored and deflated members are read")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise MemberError(f"stored member {info.filename!r} declares {info.file_size} bytes "
                                  f"but occupies {info.compress_size}")
            if info.header_offset + info.compress_size > self.file_size:
                raise MemberError(f"member {info.filename!r} ends beyond the end of the file "
                                  f"(truncated?)")
            self._infos[info.filename] = info

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def names(self):
        """Array names (member names without ``.npy``)."""
        return [n[:-4] for n in self._infos if n.endswith(".npy")]

    def _info(self, name):
        info = self._infos.get(name + ".npy")
        if info is None:
            raise MemberError(f"no array member {name!r}")
        return info

    def inflated_bytes(self, names):
        """Total declared size of the deflated members among ``names``."""
        return sum(i.file_size for i in map(self._info, names) if i.compress_type != zipfile.ZIP_STORED)

    def check_inflation(self, names):
        """Raise unless the deflated members among ``names`` together stay within the limit."""
        total = self.inflated_bytes(names)
        if total > self.max_inflated_bytes:
            raise InflationLimitError(total, self.max_inflated_bytes, self.file_size)

    def array(self, name):
        """Read one member as a numeric/bool array (anything else raises MemberError)."""
        info = self._info(name)
        if info.compress_type != zipfile.ZIP_STORED:
            self.check_inflation([name])
        with self._zip.open(info) as f:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = npy_format.read_array_header_2_0(f)
            else:
                raise MemberError(f"member {name!r} is .npy format version {version}")
            if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
                raise MemberError(f"member {name!r} holds dtype {dtype}, not a numeric array")
            count = math.prod(shape)
            nbytes = count * dtype.itemsize
            header = f.tell()
            if header + nbytes != info.file_size:
                raise MemberError(f"member {name!r} declares shape {shape} {dtype} ({nbytes} bytes "
                                  f"after a {header}-byte header) but holds {info.file_size} bytes")
            flat = numpy.empty(count, dtype)
            raw = flat.view(numpy.uint8)
            pos = 0
            while pos < nbytes:
                chunk = f.read(min(_CHUNK, nbytes - pos))
                if not chunk:
                    raise MemberError(f"member {name!r} ends after {pos} of {nbytes} bytes")
                raw[pos:pos + len(chunk)] = numpy.frombuffer(chunk, numpy.uint8)
                pos += len(chunk)
            if f.read(1):
                raise MemberError(f"member {name!r} holds more than its header declares")
        return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


class InflationLimitError(MemberError):
    def __init__(self, total, limit, file_size):
        super().__init__(f"its deflated members declare {total:,} bytes once inflated (the file is "
                         f"{file_size:,} bytes), over the limit of {limit:,} bytes; if you trust the "
                         f"file, pass max_inflated_bytes= (or set gradflow.serialization."
                         f"MAX_INFLATED_BYTES) higher")
        self.total, self.limit = total, limit
