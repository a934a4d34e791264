#!/usr/bin/env python3
"""Run a command on a pseudo-terminal and answer its passphrase prompts.

usage: pty_run.py [--answer TEXT]... -- COMMAND [ARG]...

Each time the command's terminal output since the last answer contains a
prompt (a line ending in ':' that mentions a passphrase or password), the next
answer is typed, followed by Enter. Everything the command printed is copied
to stdout; the exit status is the command's. Used by the tests to drive real
programs (age -p, helm-bulk's passphrase prompts) as a person would.
"""
import os
import pty
import re
import select
import sys

PROMPT = re.compile(rb"(passphrase|password)[^\n]*:\s*$", re.IGNORECASE)


def main() -> int:
    args = sys.argv[1:]
    answers = []
    while args and args[0] == "--answer":
        answers.append(args[1].encode())
        args = args[2:]
    if not args or args[0] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    cmd = args[1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out = bytearray()
    pending = bytearray()
    while True:
        try:
            ready, _, _ = select.select([fd], [], [], 120)
        except InterruptedError:
            continue
        if not ready:
            os.kill(pid, 9)
            sys.stderr.write("pty_run: timed out waiting for output\n")
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        pending += chunk
        if answers and PROMPT.search(bytes(pending)):
            os.write(fd, answers.pop(0) + b"\n")
            pending.clear()
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(bytes(out))
    sys.stdout.flush()
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
