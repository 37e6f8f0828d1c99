"""attach with the client's streams (the CRI's Attach, behind the kubelet's /attach): the shim's
attach op brings the container's live output (stdout and stderr told apart, or its terminal's),
which is written to the session until the container exits or the client goes; the client's
stdin goes into the container's stdin fifo, whose first writer's close is the container's EOF
under stdinOnce (the shim holds it open otherwise); terminal sizes go to the shim's resize op.

Three threads for one attach: this one relays the output, one copies stdin, one applies
resizes; all end when the attach does."""
from __future__ import annotations

import errno
import os
import queue
import select
import socket
import threading

import shim

from cri.streaming.backend import Session, StreamError, write_output

# How often the resize thread looks whether the attach ended (it waits on the session's queue).
_RESIZE_POLL = 0.5


def run(shim_root: str, container_id: str, stdin_fifo: str | None, session: Session) -> None:
    """Joins the container's stdio until it exits or the client goes (StreamError when its
    shim refuses: the container has exited, or its shim is gone)."""
    try:
        client = shim.connect(container_id, shim_root)
    except shim.ShimError as e:
        raise StreamError(str(e)) from None
    stop_r, stop_w = os.pipe2(os.O_CLOEXEC)
    threads = []
    try:
        try:
            tty = client.attach()
        except shim.ShimError as e:
            raise StreamError(str(e)) from None
        if session.stdin is not None and stdin_fifo:
            writer = _open_writer(stdin_fifo)
            if writer >= 0:
                threads.append(threading.Thread(target=_copy_stdin,
                                                args=(session.stdin, writer, stop_r),
                                                name="attach-stdin", daemon=True))
        if tty:
            threads.append(threading.Thread(target=_apply_resizes,
                                             args=(shim_root, container_id, session, stop_r),
                                             name="attach-resize", daemon=True))
        for thread in threads:
            thread.start()
        _relay_output(client, session, tty)
    finally:
        os.close(stop_w)  # the threads see the stop pipe's EOF
        for thread in threads:
            thread.join()
        os.close(stop_r)
        client.close()


def _relay_output(client: shim.ShimClient, session: Session, tty: bool) -> None:
    """Frames to the session in a thread of its own (a frame read blocks), while this thread
    watches whether the client went (a session stream's reader closed) or the output ended."""
    done_r, done_w = os.pipe2(os.O_CLOEXEC)

    def reader() -> None:
        try:
            while (frame := client.read_frame()) is not None:
                stream, data = frame
                fd = session.stdout if tty or stream == 1 else session.stderr
                if fd is not None and not write_output(fd, data):
                    return
        finally:
            os.close(done_w)

    thread = threading.Thread(target=reader, name="attach-output", daemon=True)
    thread.start()
    poller = select.poll()
    poller.register(done_r, select.POLLIN)
    for fd in {session.stdout, session.stderr} - {None}:
        poller.register(fd, 0)  # POLLERR / POLLHUP: the client has gone
    try:
        poller.poll()
    finally:
        # Ends the reader's blocking read, if it still waits for a frame.
        with socket.socket(fileno=os.dup(client.fileno())) as sock:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        thread.join()
        os.close(done_r)


def _open_writer(fifo: str) -> int:
    """A writer of the stdin fifo, or -1 when its reader is gone (stdinOnce: stdin was closed
    by an earlier attach)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENXIO, errno.ENOENT):
            return -1
        raise StreamError(f"stdin: {e.strerror}") from None
    return fd


def _copy_stdin(stdin: int, writer: int, stop: int) -> None:
    """The client's stdin into the fifo until its EOF (then closing the fifo's writer is what
    the container sees under stdinOnce) or the attach's end."""
    try:
        poller = select.poll()
        poller.register(stdin, select.POLLIN)
        poller.register(stop, select.POLLIN)
        while True:
            if any(fd == stop for fd, _ in poller.poll()):
                return
            try:
                data = os.read(stdin, 65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data or not _write_fifo(writer, data, stop):
                return
    finally:
        os.close(writer)


def _write_fifo(fd: int, data: bytes, stop: int) -> bool:
    """False when the attach ended first, or the fifo's reader is gone."""
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.register(stop, select.POLLIN)
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        except OSError:
            return False
        if any(ready == stop for ready, _ in poller.poll()):
            return False
    return True


def _apply_resizes(shim_root: str, container_id: str, session: Session, stop: int) -> None:
    try:
        client = shim.connect(container_id, shim_root)
    except shim.ShimError:
        return
    with client:
        while not select.select([stop], [], [], 0)[0]:
            try:
                size = session.resizes.get(timeout=_RESIZE_POLL)
            except queue.Empty:
                continue
            try:
                client.resize(size.width, size.height)
            except shim.ShimError:
                return
