"""How many verifications of one bcrypt hash the C library's crypt() (libxcrypt) makes per second, in
PROCESSES processes, for bench/run: the fastest bcrypt on the machine, which an uncached login is compared with.

    python3 bench/bcrypt_libc.py HASH PASSWORD PROCESSES SECONDS

HASH is the bare crypt string ($2y$10$...). Every verification must match. Prints
`RATE verifications=... seconds=... per_second=...`.
"""

import ctypes
import ctypes.util
import multiprocessing
import sys
import time


def worker(setting: bytes, password: bytes, until: float, results) -> None:
    library = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    library.crypt.restype = ctypes.c_char_p
    library.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    count = 0
    while time.monotonic() < until:
        if library.crypt(password, setting) != setting:
            raise SystemExit("libcrypt's bcrypt did not reproduce the hash")
        count += 1
    results.put(count)


def main() -> int:
    setting, password = sys.argv[1].encode(), sys.argv[2].encode()
    processes, seconds = int(sys.argv[3]), float(sys.argv[4])
    results = multiprocessing.Queue()
    started = time.monotonic()
    until = started + seconds
    workers = [multiprocessing.Process(target=worker, args=(setting, password, until, results)) for _ in range(processes)]
    for process in workers:
        process.start()
    count = sum(results.get() for _ in workers)
    for process in workers:
        process.join()
    elapsed = time.monotonic() - started
    print(f"RATE verifications={count} seconds={elapsed:.3f} per_second={count / elapsed:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
