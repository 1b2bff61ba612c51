#!/usr/bin/env python3
"""A receiver wrapper for the redo tests: runs $RELAY_TARGET with our argv
and relays both streams, flipping the lowest bit of the last byte of the
first occurrence of the bytes $RELAY_CORRUPT (hex) in the client's stream.
The client then sees a whole-file checksum mismatch and the receiver must
redo the file (rsync-protocol.md §8.6)."""
import os
import subprocess
import sys
import threading

target = os.environ["RELAY_TARGET"]
mark = bytes.fromhex(os.environ["RELAY_CORRUPT"])
p = subprocess.Popen([target] + sys.argv[1:], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, bufsize=0)


def upstream():
    done = False
    tail = b""
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        if not done:
            buf = tail + chunk
            i = buf.find(mark)
            if i >= 0:
                j = i + len(mark) - 1 - len(tail)  # index in chunk
                chunk = bytearray(chunk)
                chunk[j] ^= 1
                chunk = bytes(chunk)
                done = True
            tail = buf[-(len(mark) - 1):] if len(mark) > 1 else b""
        try:
            p.stdin.write(chunk)
        except BrokenPipeError:
            break
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass


t = threading.Thread(target=upstream, daemon=True)
t.start()
while True:
    data = p.stdout.read(65536)
    if not data:
        break
    while data:
        n = os.write(1, data)
        data = data[n:]
sys.exit(p.wait())
