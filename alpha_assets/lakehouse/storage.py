"""Where the data directory lives: a local folder, or a prefix of an S3 bucket (``s3://bucket/prefix``).

A local data directory is a :class:`pathlib.Path`; an object-store one is a :class:`upath.UPath` over ``s3fs``,
which has the same path API (``/``, ``exists``, ``read_bytes``, ``iterdir``, ``glob``, ``stat``), so the modules
that read and write the lakehouse take either. What a folder gives and a bucket does not is here, once:

- **Atomic replace.** One ``PUT`` of an object is atomic (a reader gets the old object or the new one, never a
  part, multipart uploads included), so a write to a bucket is a direct put: no temporary file, no rename.
- **Move.** A bucket has no rename: :func:`move` copies, then deletes the source. A crash between the two
  leaves the object in both places, never in neither.
- **Locks.** No ``flock``: :func:`object_lease` holds a lease object created with a conditional write
  (``If-None-Match: *``, refused with 412 when the lease exists). A lease names its holder (host, process,
  expiry); a lease whose holder died on this host, or whose expiry passed, is taken over with a conditional
  overwrite on its ETag (``If-Match``), so two waiters never both take it, and released with a conditional
  delete on the ETag it was written with, so a holder never removes a lease it lost.

Connection settings are AWS's standard environment variables, read by botocore when the first request is made:
``AWS_ENDPOINT_URL`` (an S3-compatible server), ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, and ``AWS_REGION`` (passed on here: botocore itself reads only ``AWS_DEFAULT_REGION``).
No credential is held by the objects of this module, so none reaches a path, a message or a log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

from upath import UPath

from alpha_assets.errors import UnusableEnvironmentError

#: A data directory or a path under it: a local folder or an object-store location.
DataPath: TypeAlias = Path | UPath

OBJECT_STORE_SCHEME = "s3"
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
#: S3's bucket naming rules (3 to 63 of lowercase letters, digits, dots and hyphens, alphanumeric at both ends).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: One segment of the prefix: what a folder name of this project may hold, no "." or ".." segment.
_PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")

#: A lease expires after this long: longer than any one read-merge-write of a symbol takes.
LEASE_SECONDS = 120.0
#: How long a writer waits for another's lease before it gives up, naming the lease.
LEASE_WAIT_SECONDS = 300.0
_LEASE_POLL_SECONDS = 0.05


#: Characters delta-rs cannot open a local table under (checked on deltalake 1.6).
_DELTA_UNSAFE = frozenset("[]")


def data_root(location: str | os.PathLike[str]) -> DataPath:
    """The data directory at ``location``: an absolute local :class:`Path`, or a :class:`UPath` for ``s3://``.

    Parameters
    ----------
    location : str or path-like
        A folder (``~`` expanded, made absolute) or ``s3://bucket[/prefix]``.

    Raises
    ------
    ValueError
        When ``location`` is a local folder whose path holds ``[`` or ``]``, a URI of another scheme, or an
        ``s3://`` URI that holds credentials, whose bucket breaks S3's naming rules or whose prefix has an empty,
        ``.``/``..`` or unusual segment (the message names the input, without any ``user:password@`` part).
    """
    if isinstance(location, UPath):
        location = str(location)
    text = os.fspath(location)
    match = _URI.match(text)
    if match is None:
        folder = Path(text).expanduser().resolve()
        if _DELTA_UNSAFE.intersection(str(folder)):
            # delta-rs 1.x parses a table's location as a URL and panics on brackets, even percent-encoded.
            raise ValueError(
                f"data directory {str(folder)!r} is refused: '[' and ']' in a folder name cannot hold the "
                "Delta Lake features table (delta-rs reads them as an IPv6 host); choose a folder without them"
            )
        return folder
    scheme, rest = match["scheme"].lower(), match["rest"]
    shown = f"{scheme}://{rest.rpartition('@')[2]}"
    if scheme != OBJECT_STORE_SCHEME:
        raise ValueError(f"data directory {shown!r} is refused: only a local folder or s3://bucket/prefix is supported")
    bucket, _, prefix = rest.rstrip("/").partition("/")
    if "@" in bucket:
        raise ValueError(
            f"data directory {shown!r} is refused: it holds credentials (user:password@); set AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY instead"
        )
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(
            f"data directory {shown!r} is refused: {bucket!r} is not an S3 bucket name "
            "(3-63 lowercase letters, digits, '.' and '-')"
        )
    segments = prefix.split("/") if prefix else []
    bad = [segment for segment in segments if not _PREFIX_SEGMENT.fullmatch(segment)]
    if bad:
        raise ValueError(
            f"data directory {shown!r} is refused: prefix segment {bad[0]!r} is not a plain name "
            "(letters, digits, '.', '_', '-'; no empty, '.' or '..' segment)"
        )
    return UPath("/".join([f"{scheme}://{bucket}", *segments]), **_s3_options())


def _s3_options() -> dict[str, object]:
    """s3fs options from the environment: the region only (credentials and endpoint stay botocore's)."""
    # Listings are re-read every time: other processes (Dagster's step processes, a second writer) add objects.
    options: dict[str, object] = {"use_listings_cache": False}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


def table_storage_options(root: DataPath) -> dict[str, str] | None:
    """``storage_options`` for ``deltalake`` (delta-rs) on the tables under ``root``; None for a local folder.

    Only settings, no credential: delta-rs reads ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` from the environment itself. Commits use S3's conditional writes
    (``aws_conditional_put: etag``), which AWS and the S3-compatible servers (MinIO, R2, moto) honour, so two
    writers never overwrite each other's commit and no DynamoDB lock table is needed.
    """
    if not is_object_store(root):
        return None
    options = {"aws_conditional_put": "etag"}
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):
        options["aws_allow_http"] = "true"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["aws_region"] = region
    return options


#: AWS's S3 host names: ``s3.amazonaws.com``, ``s3.<region>.amazonaws.com``, ``<bucket>.s3.<region>.amazonaws.com``,
#: ``s3-<region>.amazonaws.com`` and the dual-stack ``s3.dualstack.<region>.amazonaws.com``.
_AWS_S3_HOSTS = r"(?:[a-z0-9.-]+\.)?s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com"


def object_store_host_patterns() -> tuple[str, ...]:
    """Host names (regular expressions) of the S3 endpoint: ``AWS_ENDPOINT_URL``'s host, else AWS's S3 hosts.

    What the Alpha cycle's network guard lets through besides loopback, so that it reads a lakehouse in a bucket.
    """
    endpoint = urllib.parse.urlsplit(os.environ.get("AWS_ENDPOINT_URL", "")).hostname
    return (re.escape(endpoint.lower()),) if endpoint else (_AWS_S3_HOSTS,)


def is_object_store(path: DataPath) -> bool:
    """Whether ``path`` is in an object store (a bucket) rather than a local folder."""
    return isinstance(path, UPath) and path.protocol == OBJECT_STORE_SCHEME


def as_data_path(path: str | os.PathLike[str] | UPath) -> DataPath:
    """``path`` as given when it is a :class:`UPath`, else as a local :class:`Path` (a ``str`` is a local path)."""
    return path if isinstance(path, UPath) else Path(path)


def put_object(path: UPath, data: bytes) -> None:
    """Write ``data`` as the object ``path`` in one put: readers see the old object or the new one."""
    path.fs.pipe_file(path.path, data)


def move(source: DataPath, target: DataPath) -> None:
    """Move the file ``source`` to ``target``: an atomic rename locally; copy then delete in a bucket."""
    if is_object_store(source):
        source.fs.copy(source.path, target.path)
        source.fs.rm_file(source.path)
    else:
        os.replace(source, target)


def make_folder(path: DataPath) -> None:
    """Create the folder ``path`` and its parents; nothing in a bucket, where a prefix needs no creating."""
    if not is_object_store(path):
        path.mkdir(parents=True, exist_ok=True)


def check_writable(root: UPath) -> None:
    """Put and delete a probe object under ``root``, or say why the data directory cannot be used.

    Raises
    ------
    UnusableEnvironmentError
        When the bucket does not exist, the credentials are missing or refused, or the endpoint does not
        answer; the message names the data directory and the reason, never a credential.
    """
    probe = root / f".probe-{uuid.uuid4().hex}"
    try:
        put_object(probe, b"")
        probe.fs.rm_file(probe.path)
    except Exception as err:  # noqa: BLE001 - botocore's and s3fs' errors have no common base but Exception.
        raise UnusableEnvironmentError(f"data directory {root} cannot be written: {_reason(err)}") from err


def _reason(err: BaseException) -> str:
    """A one-line reason for an object-store failure, from the error's class and message (no credential)."""
    if isinstance(err, FileNotFoundError):
        return "the bucket does not exist (create it first)"
    if isinstance(err, PermissionError):
        return "access denied: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy"
    name = type(err).__name__
    if name == "NoCredentialsError":
        return "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if name in {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError"}:
        return f"the endpoint does not answer (AWS_ENDPOINT_URL={os.environ.get('AWS_ENDPOINT_URL') or 'unset'})"
    return f"{name}: {' '.join(str(err).split())}"


class LeaseTimeoutError(UnusableEnvironmentError):
    """Another writer held a lease longer than :data:`LEASE_WAIT_SECONDS`; the message names the lease."""


@contextlib.contextmanager
def object_lease(lease: UPath) -> Iterator[None]:
    """Hold the lease object ``lease`` (see the module docstring) for the body of the ``with``.

    Raises
    ------
    LeaseTimeoutError
        When a live holder keeps the lease for longer than :data:`LEASE_WAIT_SECONDS`.
    """
    fs, key = lease.fs, lease.path
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    etag = None
    while etag is None:
        body = _lease_body()
        try:
            etag = fs.pipe_file(key, body, mode="create")["ETag"]
        except FileExistsError:
            etag = _take_over_if_stale(lease, body)
        if etag is None:
            if time.monotonic() > deadline:
                raise LeaseTimeoutError(
                    f"{lease} is held by another writer for more than {LEASE_WAIT_SECONDS:.0f} s "
                    f"({_describe(lease)}); if that writer is gone, delete the lease object"
                )
            time.sleep(_LEASE_POLL_SECONDS)
    try:
        yield
    finally:
        bucket, object_key, _ = fs.split_path(key)
        # Conditional: a lease taken over after it expired is the new holder's, not ours to delete.
        with contextlib.suppress(FileNotFoundError, FileExistsError, OSError):
            fs.call_s3("delete_object", Bucket=bucket, Key=object_key, IfMatch=etag)


def _lease_body() -> bytes:
    return json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "expires": time.time() + LEASE_SECONDS}, sort_keys=True
    ).encode()


def _take_over_if_stale(lease: UPath, body: bytes) -> str | None:
    """Overwrite ``lease`` if its holder is gone (conditional on its ETag); the new ETag, or None."""
    fs = lease.fs
    try:
        info = fs.info(lease.path)
        holder = json.loads(fs.cat_file(lease.path))
    except FileNotFoundError:
        return None  # released meanwhile: the next create takes it
    except ValueError:
        holder = {}  # unreadable: treated as expired
    if not _stale(holder):
        return None
    try:
        return fs.pipe_file(lease.path, body, IfMatch=info["ETag"])["ETag"]
    except (FileExistsError, FileNotFoundError):
        return None  # another waiter took it over first, or it was released


def _stale(holder: dict[str, object]) -> bool:
    expires = holder.get("expires")
    if not isinstance(expires, int | float) or expires < time.time():
        return True
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def _describe(lease: UPath) -> str:
    try:
        holder = json.loads(lease.fs.cat_file(lease.path))
    except (OSError, ValueError):
        return "holder unknown"
    return f"held by pid {holder.get('pid')} on {holder.get('host')}"
