"""The one module that calls an operating system's own API (POSIX or Windows).

Users run Windows, Linux and macOS, so nothing else in the code base calls ``fcntl``, ``msvcrt`` or
another single-OS function: it asks here. Today that is the advisory file lock (``flock`` on POSIX,
``msvcrt.locking`` on Windows) behind one :class:`FileLock`, and the identity of a process (pid,
create time, command line) that a lock holder or an open-store marker records, so that a recycled pid
after a reboot is never mistaken for the process that wrote it.

Why an OS lock and not a pid file alone: the OS drops the lock when its process dies, however it
dies (``kill -9``, a crash, a power cut), so a lock is never "stale"; the pid and command written
into the locked file only say *who* holds it.

Child processes too: a worker starts in its own process group (:func:`new_process_group_options`), is
asked to stop (:func:`ask_to_stop`: SIGTERM on POSIX, CTRL_BREAK_EVENT on Windows) and, if it does not,
killed with everything under it (:func:`kill_tree`); :func:`replace_file` retries while Windows'
scanners hold a file. On Windows every worker joins the app's Job Object with kill-on-close
(:func:`bind_child_to_app`): it ends when the app ends, however the app ends, even before its own
parent watchdog notices. Each Windows decision takes a ``windows`` flag (or the faked ``kernel32``) so
tests exercise it on Linux.

And the disk: :func:`network_filesystem` tells whether a folder is on a network file system (Linux:
the mount table; Windows: a UNC path or ``GetDriveTypeW``; macOS: ``statfs``), where SQLite's WAL
mode must not be used (:mod:`core.paths` decides what to do about it).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

# Windows locks a byte range, and a locked range cannot be read by others: lock one byte far past
# the text, so the holder's description stays readable.
_WINDOWS_LOCK_OFFSET = 1 << 30
_WAIT_POLL_S = 0.05
CREATE_TIME_TOLERANCE_S = 1.0  # create times read twice differ by rounding only

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


# -- processes -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessIdentity:
    """A process as it can be recognised later: a pid alone may be reused after the process ends."""

    pid: int
    create_time: float
    command: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        me = psutil.Process(os.getpid())
        try:
            command = " ".join(me.cmdline())
        except (psutil.AccessDenied, psutil.ZombieProcess):
            command = " ".join(sys.argv)
        return cls(me.pid, me.create_time(), command or sys.executable)

    @classmethod
    def from_json(cls, text: str) -> ProcessIdentity | None:
        """The identity written by :meth:`to_json`; None for an empty or unreadable text."""
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(int(data["pid"]), float(data["create_time"]), str(data.get("command", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def alive(self) -> bool:
        return process_alive(self.pid, self.create_time)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.create_time))
        return f"process {self.pid} ({self.command}), started {started}"


def process_alive(pid: int | None, create_time: float | None) -> bool:
    """Whether ``pid`` runs and is the process that started at ``create_time`` (None: any start time)."""
    if not pid:
        return False
    try:
        started = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return create_time is None or abs(started - create_time) < CREATE_TIME_TOLERANCE_S


# -- file locks ----------------------------------------------------------------------------------
class FileLock:
    """An exclusive advisory lock on ``path``, released by the OS when this process ends.

    The locked file may hold a text (the holder's :class:`ProcessIdentity`) that others can read
    with :func:`read_lock_text` while the lock is held. A lock is per open file: a second
    :class:`FileLock` on the same path in the same process is refused like another process's.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False at once if another holder has it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lock (used around short critical sections only)."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_WAIT_POLL_S)
        return True

    def write_text(self, text: str) -> None:
        """Replace the file's text (the lock must be held)."""
        assert self._fd is not None, "write_text needs the lock"
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, text.encode("utf-8"))
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def read_lock_text(path: Path) -> str:
    """The text a lock holder wrote into its file ('' when there is none yet)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(64 * 1024).rstrip("\x00")
    except OSError:
        return ""


# -- child processes: start in their own group, stop gracefully, kill the whole tree --------------
# Windows constants (subprocess has them only on Windows; the values are the Win32 API's).
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000
IS_WINDOWS = sys.platform == "win32"


def new_process_group_options(windows: bool = IS_WINDOWS) -> dict[str, Any]:
    """``subprocess.Popen`` options that start a child in its own process group (a stop reaches its
    data-loader children too, and a Ctrl+C in the app's terminal does not): a new session on POSIX;
    a new process group without a console window on Windows (the frozen app is windowed)."""
    if windows:
        return {"creationflags": CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW}
    return {"start_new_session": True}


def no_console_options(windows: bool = IS_WINDOWS) -> dict[str, Any]:
    """``subprocess`` options for a helper child (inference worker, ``mlflow ui``, model lists): on
    Windows no console window pops up beside the windowed app; nothing on POSIX."""
    return {"creationflags": CREATE_NO_WINDOW} if windows else {}


def ask_to_stop(process: Any, windows: bool = IS_WINDOWS) -> None:
    """The graceful stop: SIGTERM to the child's group on POSIX, CTRL_BREAK_EVENT to its group on
    Windows (the worker's handler finishes the batch and saves last.pt)."""
    if windows:
        _send(process, getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
        return
    _signal_group(process, signal.SIGTERM)


def kill_tree(process: Any, windows: bool = IS_WINDOWS) -> None:
    """Kill the child and every process under it at once (no cleanup): SIGKILL to its group on POSIX;
    on Windows each descendant (psutil) and then the child (TerminateProcess)."""
    if not windows:
        _signal_group(process, signal.SIGKILL)  # type: ignore[attr-defined, unused-ignore]
        return
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    for child in descendants:
        with _quiet():
            child.kill()
    with _quiet():
        process.kill()


def kill_self() -> None:
    """End this process at once, as ``kill -9`` would (fault injection: no cleanup, no atexit)."""
    if IS_WINDOWS:
        os.kill(os.getpid(), signal.SIGTERM)  # TerminateProcess
        return
    os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[attr-defined, unused-ignore]


def killed_by_kill_signal(exit_code: int | None) -> bool:
    """Whether a child's exit status says it was killed outright (POSIX SIGKILL: out of memory, or
    someone's ``kill -9``). Windows has no signal in an exit status."""
    kill = getattr(signal, "SIGKILL", None)
    return exit_code is not None and kill is not None and exit_code == -int(kill)


def parent_identity() -> ProcessIdentity | None:
    """The process that started this one, as it can be recognised later (None if it is already gone)."""
    try:
        parent = psutil.Process(os.getppid())
        return ProcessIdentity(parent.pid, parent.create_time(), "")
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def parent_alive(parent: ProcessIdentity | None) -> bool:
    """Whether the process that started us is still there. ``os.getppid()`` changing is not enough:
    on Windows a dead parent's pid is not replaced by an adopter, and pids are recycled; the pid
    with its create time is."""
    return parent is not None and parent.alive()


def _signal_group(process: Any, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # type: ignore[attr-defined, unused-ignore]
    except (ProcessLookupError, PermissionError):
        _send(process, sig)


def _send(process: Any, sig: int) -> None:
    with _quiet():
        process.send_signal(sig)


class _quiet:
    """Ignore "the process is already gone" while stopping one."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_rest: object) -> bool:
        return kind is not None and issubclass(kind, (ProcessLookupError, psutil.NoSuchProcess, OSError))


def replace_file(source: Path, target: Path, *, attempts: int = 20, pause_s: float = 0.05) -> None:
    """``os.replace`` that retries briefly while another process holds ``target`` open (on Windows
    a virus scanner or an indexer does, and the replace fails with PermissionError meanwhile)."""
    for attempt in range(attempts):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt == attempts - 1:
                raise
            time.sleep(pause_s)


# -- Windows: children die with the app (a Job Object that kills its processes when it closes) -----
# Values from the Win32 API (winnt.h); ctypes has no names for them.
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9  # JobObjectExtendedLimitInformation
PROCESS_SET_QUOTA = 0x0100
PROCESS_TERMINATE = 0x0001


class _BasicLimitInformation(ctypes.Structure):
    _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                ("LimitFlags", ctypes.c_uint32), ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", ctypes.c_uint32),
                ("Affinity", ctypes.c_size_t), ("PriorityClass", ctypes.c_uint32), ("SchedulingClass", ctypes.c_uint32)]


class _IoCounters(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
                                                     "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]


class JobExtendedLimitInformation(ctypes.Structure):
    """JOBOBJECT_EXTENDED_LIMIT_INFORMATION (144 bytes on 64-bit Windows)."""

    _fields_ = [("BasicLimitInformation", _BasicLimitInformation), ("IoInfo", _IoCounters),
                ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]


class AppJob:
    """The app's Windows Job Object, created on first use, with kill-on-close.

    The app holds the job's only handle until it ends; when it ends, however it ends (closed, crashed,
    killed in the Task Manager), Windows closes that handle and ends every process in the job, with
    their own children (a worker's data loaders join the job as they start). ``kernel32`` is the
    Win32 API (faked in tests); a set-up that fails is remembered and reported, never retried.
    """

    def __init__(self, kernel32: Any = None) -> None:
        self._kernel32 = kernel32
        self._handle: int | None = None
        self._problem: str | None = None
        self._lock = threading.Lock()

    def assign(self, pid: int) -> str | None:
        """Put process ``pid`` in the job: None when done, else why not (the caller reports it)."""
        with self._lock:
            if self._handle is None and self._problem is None:
                self._create()
            if self._handle is None:
                return self._problem
            return self._assign(pid)

    def _create(self) -> None:
        try:
            kernel32 = self._kernel32 = self._kernel32 or _load_kernel32()
        except OSError as exc:
            self._problem = f"the Win32 API could not be loaded ({exc})"
            return
        handle = kernel32.CreateJobObjectW(None, None)
        if not handle:
            self._problem = f"CreateJobObjectW failed (Windows error {kernel32.last_error()})"
            return
        info = JobExtendedLimitInformation()
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        if not kernel32.SetInformationJobObject(handle, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
                                                ctypes.pointer(info), ctypes.sizeof(info)):
            self._problem = f"SetInformationJobObject failed (Windows error {kernel32.last_error()})"
            kernel32.CloseHandle(handle)
            return
        self._handle = handle  # kept open for the app's whole life: closing it would end the workers

    def _assign(self, pid: int) -> str | None:
        kernel32 = self._kernel32
        process = kernel32.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, False, pid)
        if not process:
            return f"OpenProcess({pid}) failed (Windows error {kernel32.last_error()})"
        try:
            if not kernel32.AssignProcessToJobObject(self._handle, process):
                return f"AssignProcessToJobObject({pid}) failed (Windows error {kernel32.last_error()})"
        finally:
            kernel32.CloseHandle(process)
        return None


_app_job: AppJob | None = None
_app_job_lock = threading.Lock()


def app_job() -> AppJob:
    """This process's one :class:`AppJob` (created on the first call)."""
    global _app_job
    with _app_job_lock:
        if _app_job is None:
            _app_job = AppJob()
        return _app_job


def bind_child_to_app(process: Any, windows: bool = IS_WINDOWS, job: AppJob | None = None) -> str | None:
    """Make a just-started child end when the app ends, right after its start.

    Windows: it joins the app's Job Object (:class:`AppJob`). POSIX: nothing to do here (the child's
    parent watchdog ends it, and a stop reaches its process group). Returns None, or why the child
    could not be bound: the caller reports that and carries on (the worker's watchdog still ends it).
    """
    if not windows:
        return None
    return (job or app_job()).assign(process.pid)


if sys.platform == "win32":

    def _load_kernel32() -> Any:
        """kernel32 with the argument and result types of the calls used here (a HANDLE is a pointer:
        ctypes' default int result would cut it on 64-bit Windows)."""
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        signatures = {
            "CreateJobObjectW": ((ctypes.c_void_p, wintypes.LPCWSTR), wintypes.HANDLE),
            "SetInformationJobObject": ((wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p, wintypes.DWORD), wintypes.BOOL),
            "AssignProcessToJobObject": ((wintypes.HANDLE, wintypes.HANDLE), wintypes.BOOL),
            "OpenProcess": ((wintypes.DWORD, wintypes.BOOL, wintypes.DWORD), wintypes.HANDLE),
            "CloseHandle": ((wintypes.HANDLE,), wintypes.BOOL),
            "GetDriveTypeW": ((wintypes.LPCWSTR,), ctypes.c_uint),
        }
        for name, (arguments, result) in signatures.items():
            function = getattr(kernel32, name)
            function.argtypes, function.restype = arguments, result
        kernel32.last_error = ctypes.get_last_error
        return kernel32

else:

    def _load_kernel32() -> Any:
        raise OSError("kernel32 exists on Windows only")


# -- network file systems (SQLite's WAL needs a local disk) ----------------------------------------
# Linux /proc/mounts and macOS statfs type names of file systems served over a network.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "9p", "ceph", "glusterfs",
    "fuse.glusterfs", "lustre", "gpfs", "beegfs", "sshfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs",
    "davfs", "fuse.davfs2", "webdav", "afpfs", "ftp",
})
DRIVE_REMOTE = 4  # GetDriveTypeW: a network drive
_MOUNTS_FILE = Path("/proc/self/mounts")
_MNT_FSTYPE_LEN, _MNT_PATH_LEN = 16, 1024  # macOS MFSTYPENAMELEN, MAXPATHLEN


def network_filesystem(path: Path, system: str = sys.platform, kernel32: Any = None,
                       mounts_text: str | None = None) -> str | None:
    """What network file system ``path`` is on ("nfs4", "cifs", "a network drive (Z:)"), or None for a
    local disk or when it cannot be told. ``system`` is ``sys.platform``; ``kernel32`` (Windows) and
    ``mounts_text`` (Linux: the text of /proc/mounts) are the OS's answers, faked in tests."""
    if system == "win32":
        return _windows_network_drive(str(path), kernel32)
    if system == "darwin":
        return _macos_network_filesystem(path)
    return _linux_network_filesystem(Path(os.path.realpath(path)), mounts_text)


def _linux_network_filesystem(path: Path, mounts_text: str | None) -> str | None:
    if mounts_text is None:
        try:
            mounts_text = _MOUNTS_FILE.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    fstype = _mount_type_of(path, mounts_text)
    return fstype if fstype in NETWORK_FILESYSTEMS or (fstype or "").startswith("nfs") else None


def _mount_type_of(path: Path, mounts_text: str) -> str | None:
    """The type of the mount whose mount point is the longest prefix of ``path`` (the last one wins
    when two are mounted on the same point, as the kernel does)."""
    best: tuple[int, str] | None = None
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(_unescape_mount_field(fields[1]))
        if (path == point or point in path.parents) and (best is None or len(point.parts) >= best[0]):
            best = (len(point.parts), fields[2])
    return best[1] if best else None


def _unescape_mount_field(field: str) -> str:
    """/proc/mounts writes a space, tab, newline and backslash in a path as octal escapes (``\\040``)."""
    for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escape, char)
    return field


def _windows_network_drive(path: str, kernel32: Any) -> str | None:
    import ntpath

    drive = _windows_drive(ntpath.abspath(path) if sys.platform == "win32" else path)
    if drive.startswith(("\\\\", "//")):
        return f"a network share ({drive})"
    if len(drive) != 2:
        return None
    try:
        kernel32 = kernel32 or _load_kernel32()
    except OSError:
        return None
    return f"a network drive ({drive})" if kernel32.GetDriveTypeW(drive + "\\") == DRIVE_REMOTE else None


def _windows_drive(path: str) -> str:
    """``Z:`` or ``\\\\server\\share`` of a Windows path, long-path prefixes (``\\\\?\\``) taken off."""
    import ntpath

    drive = ntpath.splitdrive(path)[0]
    for prefix, replacement in (("\\\\?\\UNC\\", "\\\\"), ("\\\\?\\", ""), ("\\\\.\\", "")):
        if drive.startswith(prefix):
            return replacement + drive[len(prefix):]
    return drive


class _MacStatfs(ctypes.Structure):
    """macOS ``struct statfs`` (64-bit inodes: the only layout on Apple silicon)."""

    _fields_ = [("f_bsize", ctypes.c_uint32), ("f_iosize", ctypes.c_int32), ("f_blocks", ctypes.c_uint64),
                ("f_bfree", ctypes.c_uint64), ("f_bavail", ctypes.c_uint64), ("f_files", ctypes.c_uint64),
                ("f_ffree", ctypes.c_uint64), ("f_fsid", ctypes.c_int32 * 2), ("f_owner", ctypes.c_uint32),
                ("f_type", ctypes.c_uint32), ("f_flags", ctypes.c_uint32), ("f_fssubtype", ctypes.c_uint32),
                ("f_fstypename", ctypes.c_char * _MNT_FSTYPE_LEN), ("f_mntonname", ctypes.c_char * _MNT_PATH_LEN),
                ("f_mntfromname", ctypes.c_char * _MNT_PATH_LEN), ("f_flags_ext", ctypes.c_uint32),
                ("f_reserved", ctypes.c_uint32 * 7)]


def _macos_network_filesystem(path: Path, libc: Any = None) -> str | None:
    fstype = _macos_fstype(path, libc)
    return fstype if fstype in NETWORK_FILESYSTEMS else None


def _macos_fstype(path: Path, libc: Any) -> str | None:
    """``statfs(2)``'s f_fstypename ("apfs", "smbfs", "nfs"…); Intel Macs name the 64-bit-inode call
    ``statfs$INODE64``, Apple silicon ``statfs``."""
    try:
        libc = libc or ctypes.CDLL(None, use_errno=True)
        statfs = getattr(libc, "statfs$INODE64", None) or libc.statfs
    except (OSError, AttributeError):
        return None
    result = _MacStatfs()
    if statfs(os.fsencode(os.path.abspath(path)), ctypes.pointer(result)) != 0:
        return None
    return result.f_fstypename.decode("utf-8", "replace")
