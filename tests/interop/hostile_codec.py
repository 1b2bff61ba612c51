"""Compressed token streams for the hostile sender (rsync-protocol.md §9.3)
whose data is really compressed by the libraries: zstd frames from
libzstd and lz4 blocks from liblz4 (both through ctypes: the -dev
packages the build needs already bring the shared libraries), raw deflate
from Python's zlib.  The token sequences around them are crafted: literal
runs past the file's size, block numbers out of range, a stream that ends
mid-frame, decompression bombs, a zstd window above the receiver's limit,
a dictionary id, skippable frames, lz4 blocks whose framed length lies,
deflate that needs history the receiver never had.  Written for berth's
tests.
"""
import ctypes
import ctypes.util
import os
import zlib

from hostile_wire import deflated, i32


def _lib(name, soname):
    path = ctypes.util.find_library(name) or soname
    return ctypes.CDLL(path)


class _InBuf(ctypes.Structure):
    _fields_ = [("src", ctypes.c_void_p), ("size", ctypes.c_size_t),
                ("pos", ctypes.c_size_t)]


class _OutBuf(ctypes.Structure):
    _fields_ = [("dst", ctypes.c_void_p), ("size", ctypes.c_size_t),
                ("pos", ctypes.c_size_t)]


_zstd = _lib("zstd", "libzstd.so.1")
_zstd.ZSTD_createCCtx.restype = ctypes.c_void_p
_zstd.ZSTD_freeCCtx.argtypes = [ctypes.c_void_p]
_zstd.ZSTD_CCtx_setParameter.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                         ctypes.c_int]
_zstd.ZSTD_CCtx_setParameter.restype = ctypes.c_size_t
_zstd.ZSTD_compressStream2.argtypes = [ctypes.c_void_p,
                                       ctypes.POINTER(_OutBuf),
                                       ctypes.POINTER(_InBuf), ctypes.c_int]
_zstd.ZSTD_compressStream2.restype = ctypes.c_size_t
_zstd.ZSTD_isError.argtypes = [ctypes.c_size_t]
_zstd.ZSTD_writeSkippableFrame.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                           ctypes.c_void_p, ctypes.c_size_t,
                                           ctypes.c_uint]
_zstd.ZSTD_writeSkippableFrame.restype = ctypes.c_size_t

_lz4 = _lib("lz4", "liblz4.so.1")
_lz4.LZ4_compress_default.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_int, ctypes.c_int]
_lz4.LZ4_compressBound.argtypes = [ctypes.c_int]

# libzstd's parameter and directive numbers (zstd.h, stable API).
ZSTD_C_LEVEL, ZSTD_C_WINDOWLOG = 100, 101
ZSTD_C_CONTENTSIZE, ZSTD_C_CHECKSUM = 200, 201
E_CONTINUE, E_FLUSH, E_END = 0, 1, 2


class Zstd:
    """One compression context for a session, as the stock sender keeps
    it: every literal run fed and flushed before the next token."""

    def __init__(self, window_log=0, checksum=False, level=3):
        self.cctx = _zstd.ZSTD_createCCtx()
        for p, v in ((ZSTD_C_LEVEL, level), (ZSTD_C_CONTENTSIZE, 0),
                     (ZSTD_C_CHECKSUM, int(checksum)),
                     (ZSTD_C_WINDOWLOG, window_log)):
            r = _zstd.ZSTD_CCtx_setParameter(self.cctx, p, v)
            assert not _zstd.ZSTD_isError(r), (p, v)

    def run(self, data, directive=E_FLUSH):
        src = ctypes.create_string_buffer(data, len(data))
        dst = ctypes.create_string_buffer(1 << 17)
        inb = _InBuf(ctypes.cast(src, ctypes.c_void_p), len(data), 0)
        out = bytearray()
        while True:
            ob = _OutBuf(ctypes.cast(dst, ctypes.c_void_p), len(dst), 0)
            r = _zstd.ZSTD_compressStream2(self.cctx, ctypes.byref(ob),
                                           ctypes.byref(inb), directive)
            assert not _zstd.ZSTD_isError(r)
            out += dst.raw[:ob.pos]
            if inb.pos == inb.size and (directive == E_CONTINUE or r == 0):
                return bytes(out)

    def __del__(self):
        _zstd.ZSTD_freeCCtx(self.cctx)


def zstd_skippable(payload, variant=0):
    dst = ctypes.create_string_buffer(len(payload) + 8)
    n = _zstd.ZSTD_writeSkippableFrame(dst, len(dst), payload, len(payload),
                                       variant)
    assert not _zstd.ZSTD_isError(n)
    return dst.raw[:n]


def lz4_block(data):
    cap = _lz4.LZ4_compressBound(len(data))
    dst = ctypes.create_string_buffer(cap)
    n = _lz4.LZ4_compress_default(data, dst, len(data), cap)
    assert n > 0
    return dst.raw[:n]


def framed(comp):
    """DEFLATED_DATA records (at most 16383 bytes each)."""
    return deflated(comp)


def zstd_tokens(z, parts, end=b"\x00"):
    """@parts: bytes (a literal run: compressed and flushed) or int (an
    absolute block, TOKEN_LONG) in file order."""
    out = bytearray()
    for p in parts:
        out += framed(z.run(p)) if isinstance(p, bytes) else \
            b"\x20" + i32(p)
    return bytes(out + end)


def lz4_tokens(parts, end=b"\x00"):
    """Literal runs cut in 32 KiB chunks (the stock sender's), one block
    each."""
    out = bytearray()
    for p in parts:
        if isinstance(p, int):
            out += b"\x20" + i32(p)
            continue
        for k in range(0, len(p), 32768):
            b = lz4_block(p[k:k + 32768])
            out += bytes([0x40 | len(b) >> 8, len(b) & 0xff]) + b
    return bytes(out + end)


def deflate_run(data, zdict=None, final=False):
    """Raw deflate of one literal run, sync-flushed with its 00 00 ff ff
    cut (or ended with a final block when @final); @zdict: history the
    compressor may reference (what the receiver holds after a matched
    block in the zlib mode)."""
    kw = {"zdict": zdict} if zdict else {}
    z = zlib.compressobj(6, zlib.DEFLATED, -15, **kw)
    if final:
        return z.compress(data) + z.flush(zlib.Z_FINISH)
    comp = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert comp.endswith(b"\x00\x00\xff\xff")
    return comp[:-4]


def codec_cases(add, ns):
    """The catalog's compressed cases.  @add: the catalog's add(); @ns:
    Stream, D, F, setup_old, tree_is, OLD_BIG, blocks_of, sum_head."""
    Stream, D, F = ns.Stream, ns.D, ns.F
    setup_old, tree_is, old = ns.setup_old, ns.tree_is, ns.OLD_BIG
    h = ns.sum_head(len(old))
    blk = ns.blocks_of(old, h)
    lit1 = b"real zstd literal, compressible " * 40
    lit2 = b"and a second run after the blocks\n" * 9
    content = lit1 + blk[0] + blk[1] + lit2
    big = [D(b"."), F(b"big.bin", content)]
    unchanged = tree_is({"big.bin": ("f", old)})

    def ans(t, c=content, ndx=1, **kw):
        a = {"ndx": ndx, "head": h, "tokens": t, "content": c}
        a.update(kw)
        return [a]

    # ---- zstd: one frame for the session, flushed before every token.
    zz = Stream(31, compress="zstd")
    add("zstd lib delta valid", zz, big,
        ans(zstd_tokens(Zstd(), [lit1, 0, 1, lit2])), 0, "",
        setup=setup_old, check=tree_is({"big.bin": ("f", content)}))
    # Two files, the frame carried on from one to the next.
    z = Zstd()
    two = [D(b"."), F(b"a", lit1), F(b"b", lit2)]
    add("zstd lib one frame over two files", zz, two,
        [{"ndx": 1, "tokens": zstd_tokens(z, [lit1]), "content": lit1},
         {"ndx": 2, "tokens": zstd_tokens(z, [lit2]), "content": lit2}], 0,
        "", check=tree_is({"a": ("f", lit1), "b": ("f", lit2)}))
    # The list says 10 bytes; 40 KiB come (rsync's receiver writes what
    # the tokens say, the sum decides).
    run = bytes(range(256)) * 160
    small = [D(b"."), F(b"s.bin", run, size=10)]
    add("zstd lib literal run past the file size", zz, small,
        [{"ndx": 1, "tokens": zstd_tokens(Zstd(), [run]), "content": run}],
        0, "", check=tree_is({"s.bin": ("f", run)}))
    for what, parts, rc in (
            ("block = count after a literal", [lit1, h[0]], 2),
            ("block -5 after a literal", [lit1, -5], 2),
            ("block 2^31-1", [lit1, 0x7fffffff], 2)):
        add(f"zstd lib {what}", zz, big,
            ans(zstd_tokens(Zstd(), parts)), rc, "", setup=setup_old,
            check=unchanged)
    # Ends mid-frame: half of a compressed block, then the file's end.
    # The decoder holds the half; the file is short, its sum wrong.
    comp = Zstd().run(lit1 + lit2)
    cut = framed(comp[:len(comp) // 2])
    add("zstd lib file ends mid-frame", zz, big,
        ans(cut + b"\x00"), 0, "failed verification -- update discarded",
        setup=setup_old, check=unchanged)
    # The second file's data completes the first one's half block: its
    # bytes are not a block's rest.
    z = Zstd()
    c1 = z.run(lit1)
    add("zstd lib half a frame, then the next file's data", zz, two,
        [{"ndx": 1, "tokens": framed(c1[:len(c1) - 7]) + b"\x00",
          "content": lit1},
         {"ndx": 2, "tokens": zstd_tokens(z, [lit2]), "content": lit2}],
        ns.CODEC, "")
    # The connection ends mid-frame.
    add("zstd lib connection ends mid-frame", zz, big,
        ans(cut, sum=b""), 12, "", setup=setup_old, check=unchanged,
        dones=0)
    # A bomb: 64 MiB of zeros from a few KiB; memory stays bounded (the
    # output is streamed to the file), the sum right: accepted.
    bomb = b"\x00" * (64 << 20)

    def bomb_written(dst):
        n = os.path.getsize(os.path.join(dst, "z"))
        return [] if n == len(bomb) else [f"z is {n} bytes"]

    add("zstd lib bomb 64 MiB (bomb)", zz, [D(b"."), F(b"z", bomb, size=5)],
        [{"ndx": 1, "tokens": zstd_tokens(Zstd(level=1), [bomb]),
          "content": bomb}], 0, "", check=bomb_written)
    # Windows: 2^27 is the receiver's limit (rsync's too: zstd's default
    # windowLogMax); 2^28 is refused.
    add("zstd lib window 2^27", zz, big,
        ans(zstd_tokens(Zstd(window_log=27), [lit1, 0, 1, lit2])), 0, "",
        setup=setup_old, check=tree_is({"big.bin": ("f", content)}))
    add("zstd lib window 2^28", zz, big,
        ans(zstd_tokens(Zstd(window_log=28), [lit1, 0, 1, lit2])),
        ns.CODEC, "",
        setup=setup_old, check=unchanged)
    # A dictionary id in the frame header (the receiver has none).
    comp = Zstd().run(lit1)
    assert comp[4] & 0x03 == 0
    dict_frame = comp[:4] + bytes([comp[4] | 0x01]) + comp[5:6] + \
        b"\x2a" + comp[6:]
    add("zstd lib frame with a dictionary id", zz, big,
        ans(framed(dict_frame) + b"\x20" + i32(0) + b"\x00"), ns.CODEC, "",
        setup=setup_old, check=unchanged)
    # Skippable frames: before the data frame (zstd skips them: valid),
    # and one whose size runs past everything sent (it eats the rest).
    sk = zstd_skippable(b"skip me " * 50, 3)
    add("zstd lib skippable frame first", zz, big,
        ans(framed(sk) + zstd_tokens(Zstd(), [lit1, 0, 1, lit2])), 0, "",
        setup=setup_old, check=tree_is({"big.bin": ("f", content)}))
    huge_sk = b"\x50\x2a\x4d\x18" + b"\xff\xff\xff\x7f" + b"x" * 30
    add("zstd lib skippable frame of 2 GiB", zz, big,
        ans(framed(huge_sk) + zstd_tokens(Zstd(), [lit1, 0, 1, lit2])), 0,
        "failed verification -- update discarded", setup=setup_old,
        check=unchanged)
    # A frame ended (e_end) and a new one begun: zstd reads both.
    z = Zstd()
    two_frames = z.run(lit1, E_END) + Zstd().run(lit2)
    add("zstd lib two frames", zz, [D(b"."), F(b"a", lit1 + lit2)],
        [{"ndx": 1, "tokens": framed(two_frames) + b"\x00",
          "content": lit1 + lit2}], 0, "",
        check=tree_is({"a": ("f", lit1 + lit2)}))
    # A frame with a content checksum, the checksum wrong.
    comp = Zstd(checksum=True).run(lit1, E_END)
    bad = comp[:-4] + bytes(b ^ 0xff for b in comp[-4:])
    add("zstd lib frame checksum wrong", zz, big,
        ans(framed(bad) + b"\x00"), ns.CODEC, "", setup=setup_old,
        check=unchanged)

    # ---- lz4: every payload one block.
    ls = Stream(31, compress="lz4")
    add("lz4 lib delta valid", ls, big,
        ans(lz4_tokens([lit1, 0, 1, lit2])), 0, "", setup=setup_old,
        check=tree_is({"big.bin": ("f", content)}))
    add("lz4 lib literal run past the file size", ls, small,
        [{"ndx": 1, "tokens": lz4_tokens([run]), "content": run}], 0, "",
        check=tree_is({"s.bin": ("f", run)}))
    b1 = lz4_block(lit1)
    rest = b"\x20" + i32(0) + b"\x20" + i32(1) + lz4_tokens([lit2])
    for what, t, rc in (
            ("framed length 3 short", bytes([0x40 | (len(b1) - 3) >> 8,
                                             (len(b1) - 3) & 0xff]) + b1 +
             rest, ns.CODEC),
            ("framed length 5 long", bytes([0x40 | (len(b1) + 5) >> 8,
                                            (len(b1) + 5) & 0xff]) + b1 +
             rest, ns.CODEC),
            ("block = count after a block", lz4_tokens([lit1, h[0]]), 2),
            # 64 KiB in one block: more than a 32 KiB chunk's bound.
            ("block of 64 KiB (bomb)", deflated(
                lz4_block(b"\x00" * 65536)) + b"\x00", ns.CODEC),
            ("match offset edited to 0xffff", deflated(
                b1[:b1.index(b"compressible") + 12] + b"\xff\xff" +
                b1[b1.index(b"compressible") + 14:]) + b"\x00", ns.CODEC)):
        add(f"lz4 lib {what}", ls, big, ans(t), rc, "", setup=setup_old,
            check=unchanged)

    # ---- zlib: history from matched blocks (zlib), none (zlibx).
    hist = blk[0][100:600] + b"literal between " * 8 + blk[0][:300]
    zcontent = blk[0] + hist
    zents = [D(b"."), F(b"big.bin", zcontent)]
    ztoks = b"\x20" + i32(0) + framed(deflate_run(hist, blk[0])) + b"\x00"
    for proto in (29, 30, 31):
        zs = Stream(proto, compress="zlib")
        add(f"p{proto} zlib lib literal referencing a matched block", zs,
            zents, ans(ztoks, zcontent), 0, "", setup=setup_old,
            check=tree_is({"big.bin": ("f", zcontent)}))
    zx = Stream(31, compress="zlibx")
    add("zlibx lib literal referencing a matched block", zx, zents,
        ans(ztoks, zcontent), ns.CODEC, "", setup=setup_old,
        check=unchanged)
    zs = Stream(31, compress="zlib")
    comp = deflate_run(lit1 + lit2)
    for what, t, rc, msg in (
            ("run ends mid-deflate", framed(comp[:len(comp) // 2]) +
             b"\x00", 2, ""),
            ("a final block (BFINAL)", framed(deflate_run(
                lit1, final=True)) + b"\x00", ns.CODEC, ""),
            ("history before any block", framed(deflate_run(
                hist, blk[0])) + b"\x00", ns.CODEC, ""),
            ("block = count after a literal", framed(comp) + b"\x20" +
             i32(h[0]) + b"\x00", 2, "")):
        add(f"zlib lib {what}", zs, big, ans(t), rc, msg, setup=setup_old,
            check=unchanged)
    add("zlib lib literal run past the file size", zs, small,
        [{"ndx": 1, "tokens": framed(deflate_run(run)) + b"\x00",
          "content": run}], 0, "", check=tree_is({"s.bin": ("f", run)}))
    add("zlib lib bomb 64 MiB (bomb)", zs, [D(b"."), F(b"z", bomb, size=5)],
        [{"ndx": 1, "tokens": framed(deflate_run(bomb)) + b"\x00",
          "content": bomb}], 0, "", check=bomb_written)
