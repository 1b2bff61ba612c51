"""Wire encodings for the hostile sender (rsync-protocol.md §3, §7, §9):
what a sending client writes, built from the protocol rather than
replayed.  Only what hostile_sender.py needs; written for berth's tests.
"""
import hashlib
import struct
import zlib


def i32(v):
    return struct.pack("<i", v)


def u32(v):
    return struct.pack("<I", v & 0xffffffff)


def varint(v):
    """§3.2, the stock writer's form."""
    b = struct.pack("<I", v & 0xffffffff)
    n = 4
    while n > 1 and b[n - 1] == 0:
        n -= 1
    t = b[n - 1]
    if n == 1 and t < 0x80:
        return bytes([t])
    if t < (0x80 >> (n - 1)):
        prefix = (0xff00 >> (n - 1)) & 0xff
        return bytes([prefix | t]) + b[:n - 1]
    prefix = (0xff00 >> n) & 0xff
    return bytes([prefix]) + b[:n]


def varlong(v, min_bytes):
    """§3.3."""
    b = struct.pack("<q", v)
    n = 8
    while n > min_bytes and b[n - 1] == 0:
        n -= 1
    t = b[n - 1]
    k = n - min_bytes
    if t >= (0x80 >> k):
        return bytes([(0xff00 >> (k + 1)) & 0xff]) + b[:n]
    if k > 0:
        return bytes([((0xff00 >> k) & 0xff) | t]) + b[:n - 1]
    return bytes([t]) + b[:min_bytes - 1]


def longint(v):
    """Protocol < 30 sizes."""
    if 0 <= v <= 0x7fffffff:
        return i32(v)
    return i32(-1) + struct.pack("<q", v)


def vstring(s):
    if len(s) < 0x80:
        return bytes([len(s)]) + s
    return bytes([0x80 | len(s) >> 8, len(s) & 0xff]) + s


class Ndx:
    """§3.5: the delta-coded index of one direction (proto >= 30), or a
    plain int32 below."""

    def __init__(self, proto):
        self.proto, self.pos, self.neg = proto, -1, 1

    def __call__(self, v):
        if self.proto < 30:
            return i32(v)
        if v == -1:
            return b"\x00"
        out = b""
        if v >= 0:
            d, self.pos, u = v - self.pos, v, v
        else:
            out, u = b"\xff", -v
            d, self.neg = u - self.neg, u
        if 1 <= d <= 253:
            return out + bytes([d])
        if 0 <= d <= 0x7fff:
            return out + bytes([0xfe, d >> 8, d & 0xff])
        return out + bytes([0xfe, (u >> 24) | 0x80, u & 0xff,
                            (u >> 8) & 0xff, (u >> 16) & 0xff])


def mux(data, tag=7, chunk=4096):
    """MSG_DATA frames (§5.1)."""
    out = bytearray()
    for i in range(0, len(data), chunk):
        c = data[i:i + chunk]
        out += bytes([len(c) & 0xff, len(c) >> 8 & 0xff, len(c) >> 16, tag])
        out += c
    return bytes(out)


def demux(stream, start):
    """The data bytes of a multiplexed stream (other messages dropped)."""
    data, i = bytearray(), start
    while i + 4 <= len(stream):
        n = stream[i] | stream[i + 1] << 8 | stream[i + 2] << 16
        if stream[i + 3] == 7:
            data += stream[i + 4:i + 4 + n]
        i += 4 + n
    return bytes(data)


# ---- the generator's sum head (§8.5.1), to echo it and name blocks ----

def auto_blength(n):
    if n <= 700 * 700:
        return 700
    c, l = 1, n >> 2
    while l:
        c <<= 1
        l >>= 2
    if c >= 131072:
        return 131072
    bl = 0
    while c >= 8:
        bl |= c
        if n < bl * bl:
            bl &= ~c
        c >>= 1
    return max(bl, 700)


def sum_head(n, digest_len=16, block=0, redo=False):
    """(count, blength, s2length, remainder) berth sends for a basis of
    @n bytes."""
    if n == 0:
        return (0, 0, 0, 0)
    bl = block or auto_blength(n)
    count = n // bl + (n % bl != 0)
    max_s2 = min(digest_len, 16)
    if redo:
        s2 = max_s2
    else:
        b, l = 10, n >> 1
        while l:
            b += 2
            l >>= 1
        c = bl >> 1
        while c and b:
            b -= 1
            c >>= 1
        b = int((b + 1 - 32 + 7) / 8)
        s2 = min(max(b, 2), max_s2)
    return (count, bl, s2, n % bl)


def head_bytes(h):
    return b"".join(i32(x) for x in h)


def blocks_of(data, h):
    count, bl = h[0], h[1]
    return [data[i * bl:(i + 1) * bl] for i in range(count)]


# ---- whole-file sums (§9.4) ----

def _md4(msg):
    """MD4 (RFC 1320), which hashlib no longer offers: protocols 27-29
    sum whole files with it."""
    def rol(x, s):
        x &= 0xffffffff
        return (x << s | x >> (32 - s)) & 0xffffffff

    n = len(msg)
    msg = msg + b"\x80" + b"\x00" * ((55 - n) % 64) + struct.pack("<Q", n * 8)
    a, b, c, d = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off:off + 64])
        aa, bb, cc, dd = a, b, c, d
        f = lambda x_, y, z: (x_ & y) | (~x_ & z)
        g = lambda x_, y, z: (x_ & y) | (x_ & z) | (y & z)
        h = lambda x_, y, z: x_ ^ y ^ z
        for i in range(16):
            k = (0, 1, 2, 3)[i % 4]
            s = (3, 7, 11, 19)[i % 4]
            v = rol(a + f(b, c, d) + x[i], s)
            a, b, c, d = d, v, b, c
        for i in range(16):
            j = (i % 4) * 4 + i // 4
            s = (3, 5, 9, 13)[i % 4]
            v = rol(a + g(b, c, d) + x[j] + 0x5a827999, s)
            a, b, c, d = d, v, b, c
        order = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
        for i in range(16):
            s = (3, 9, 11, 15)[i % 4]
            v = rol(a + h(b, c, d) + x[order[i]] + 0x6ed9eba1, s)
            a, b, c, d = d, v, b, c
        a = (a + aa) & 0xffffffff
        b = (b + bb) & 0xffffffff
        c = (c + cc) & 0xffffffff
        d = (d + dd) & 0xffffffff
    return struct.pack("<4I", a, b, c, d)


def file_sum(data, proto, seed=12345):
    """MD5 (negotiated by --checksum-choice=md5) from 30 on, the seeded
    MD4 before."""
    if proto >= 30:
        return hashlib.md5(data).digest()
    return _md4(u32(seed) + data)


assert _md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"


# ---- token streams (§9.2, §9.3) ----

def plain_tokens(parts):
    """@parts: bytes (literal) or int (block number), in file order."""
    out = bytearray()
    for p in parts:
        if isinstance(p, int):
            out += i32(-(p + 1))
        else:
            for i in range(0, len(p), 32768):
                out += i32(len(p[i:i + 32768])) + p[i:i + 32768]
    return bytes(out + i32(0))


def deflated(payload):
    out = bytearray()
    for i in range(0, len(payload), 16383):
        c = payload[i:i + 16383]
        out += bytes([0x40 | len(c) >> 8, len(c) & 0xff]) + c
    return bytes(out)


def zlib_tokens(literal, block_list):
    """One literal run (raw deflate, sync flush, its 00 00 ff ff cut),
    then matched blocks by absolute number: the compressor never needs
    the blocks' bytes as history, so no inserted history is wanted."""
    out = bytearray()
    if literal:
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        comp = z.compress(literal) + z.flush(zlib.Z_SYNC_FLUSH)
        assert comp.endswith(b"\x00\x00\xff\xff")
        out += deflated(comp[:-4])
    for b in block_list:
        out += b"\x20" + i32(b)
    return bytes(out + b"\x00")


def lz4_literal_block(data):
    """An LZ4 block of literals only (the block format's last sequence):
    framing, not compression, so no codec is written here."""
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    out, n = bytearray([0xf0]), n - 15
    while n >= 255:
        out.append(255)
        n -= 255
    out.append(n)
    return bytes(out) + data


def zstd_raw_start():
    """The start of a zstd frame (magic, a 1 MiB window, no content
    size) whose blocks are raw: framing only."""
    return b"\x28\xb5\x2f\xfd" + bytes([0x00, 0x50])


def zstd_raw_block(data, last=False):
    h = (len(data) << 3) | (1 if last else 0)  # type 0: raw
    return bytes([h & 0xff, h >> 8 & 0xff, h >> 16 & 0xff]) + data
