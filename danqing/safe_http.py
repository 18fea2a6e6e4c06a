"""HTTP for URLs that strangers wrote: an address policy on every connection, bounded responses.

Crawled image URLs, `<base href>`s and redirects all come from web pages, so any of them may name
the user's own network: `http://169.254.169.254/` (cloud metadata), `http://2130706433/`
(127.0.0.1 spelled as an integer), `[::ffff:10.0.0.1]`, or a public name that resolves to a private
address. Checking the URL's text cannot catch these; checking the address each connection really
goes to can. So every connection made through `guarded_opener` resolves the host once, refuses
loopback, private, link-local, shared (CGNAT), unique-local, multicast, unspecified and reserved
addresses (and IPv6 forms that embed such an IPv4 address), and connects to the very address it
checked, which leaves DNS rebinding no window. Redirects open new connections and are checked
the same way; they are followed only to http(s). `network.allowed_networks` is the only way in.

Every response read through the opener is bounded: a total deadline per request (a body dripped
one byte every few seconds never trips a per-read timeout) and a cap on its bytes (a declared
Content-Length over the cap is refused before the body is read).

Proxies from the environment are not used: through a proxy the address policy would check the
proxy, not the host it fetches from.
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import ipaddress
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import urllib.robotparser

# IPv4 shared address space (RFC 6598): carrier-grade NAT, and Alibaba Cloud's metadata service
# at 100.100.100.200. Python's ipaddress calls it neither private nor global.
_SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")
# NAT64 (RFC 6052): the last 32 bits are an IPv4 address reached through a translator.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SCHEMES = ("http", "https")


class RefusedAddress(OSError):
    """A connection to an address the policy refuses (the message says which and why)."""


class ResponseTooLarge(OSError):
    pass


class RequestDeadline(TimeoutError):
    pass


@dataclasses.dataclass(frozen=True)
class AddressPolicy:
    """Which IP addresses a connection may go to: globally routable ones, and `allowed`."""

    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_networks(cls, networks) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(str(n), strict=False) for n in networks or ()))

    def refusal(self, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why a connection to `address` is refused, or None when it is allowed."""
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return None
        if ip.version == 6:
            embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
            if embedded is None and ip in _NAT64:
                embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            if embedded is not None:
                inner = self.refusal(embedded)
                return f"embeds {embedded}, {inner}" if inner else None
        for attribute, name in (
            ("is_unspecified", "unspecified"),
            ("is_loopback", "loopback"),
            ("is_link_local", "link-local"),
            ("is_multicast", "multicast"),
            ("is_private", "private"),
            ("is_reserved", "reserved"),
        ):
            if getattr(ip, attribute):
                return name
        if ip.version == 4 and ip in _SHARED_V4:
            return "shared address space (carrier-grade NAT)"
        if not ip.is_global:
            return "not globally routable"
        return None

    def connect(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """A socket connected to an allowed address of `host` (the address that was checked)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as err:
            raise OSError(f"name or service not known: {host} ({err})") from err
        refused, last_error = [], None
        for family, kind, proto, _, sockaddr in infos:
            reason = self.refusal(sockaddr[0])
            if reason:
                refused.append(f"{sockaddr[0]} ({reason})")
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except OSError as err:
                sock.close()
                last_error = err
                continue
            return sock
        if last_error is not None:
            raise last_error
        raise RefusedAddress(f"refused address {', '.join(refused)} for host {host}")


@dataclasses.dataclass(frozen=True)
class ResponseLimits:
    """Bounds on one request: seconds from connecting to the last byte, bytes of the response."""

    deadline: float = 60.0
    max_bytes: int = 32 * 1024 * 1024


class _BoundedReader:
    """The response's file object, read one socket read at a time against the deadline and cap."""

    def __init__(
        self,
        fp,
        sock: socket.socket,
        per_read: float | None,
        deadline: float,
        limits: ResponseLimits,
    ):
        self._fp = fp
        self._sock = sock
        self._per_read = per_read
        self._deadline = deadline
        self._limits = limits
        self.consumed = 0

    def _arm(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise RequestDeadline(f"request deadline of {self._limits.deadline:g} s exceeded")
        self._sock.settimeout(
            remaining if self._per_read is None else min(remaining, self._per_read)
        )

    def _count(self, data: bytes) -> bytes:
        self.consumed += len(data)
        if self.consumed > self._limits.max_bytes:
            raise ResponseTooLarge(f"response too large: over {self._limits.max_bytes} bytes")
        return data

    def _timed_out(self, err: TimeoutError) -> TimeoutError:
        if time.monotonic() >= self._deadline:
            return RequestDeadline(f"request deadline of {self._limits.deadline:g} s exceeded")
        return err

    def read1(self, size: int = -1) -> bytes:
        self._arm()
        try:
            data = self._fp.read1(size if size and size > 0 else io.DEFAULT_BUFFER_SIZE)
        except TimeoutError as err:
            raise self._timed_out(err) from err
        return self._count(data)

    def read(self, size: int | None = -1) -> bytes:
        chunks, wanted = [], -1 if size is None or size < 0 else size
        while wanted != 0:
            chunk = self.read1(
                io.DEFAULT_BUFFER_SIZE if wanted < 0 else min(wanted, io.DEFAULT_BUFFER_SIZE)
            )
            if not chunk:
                break
            chunks.append(chunk)
            if wanted > 0:
                wanted -= len(chunk)
        return b"".join(chunks)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, limit: int = -1) -> bytes:
        line = b""
        while limit < 0 or len(line) < limit:
            ahead = self.peek(1)
            if not ahead:
                break
            room = len(ahead) if limit < 0 else min(len(ahead), limit - len(line))
            end = ahead.find(b"\n", 0, room)
            line += self._count(self._fp.read(room if end < 0 else end + 1))
            if end >= 0:
                break
        return line

    def peek(self, size: int = 0) -> bytes:
        self._arm()
        try:
            return self._fp.peek(size)
        except TimeoutError as err:
            raise self._timed_out(err) from err

    def flush(self) -> None:
        self._fp.flush()

    def fileno(self) -> int:
        return self._fp.fileno()

    def close(self) -> None:
        self._fp.close()

    @property
    def closed(self) -> bool:
        return self._fp.closed


class _BoundedResponse(http.client.HTTPResponse):
    def __init__(
        self, sock, *args, per_read=None, deadline: float, limits: ResponseLimits, **kwargs
    ):
        super().__init__(sock, *args, **kwargs)
        self.fp = _BoundedReader(self.fp, sock, per_read, deadline, limits)
        self._limits = limits

    def begin(self) -> None:
        super().begin()
        if self.length is not None and self.length > self._limits.max_bytes:
            self.close()
            raise ResponseTooLarge(
                f"response too large: Content-Length {self.length} is over "
                f"{self._limits.max_bytes} bytes"
            )


class _GuardedConnectionMixin:
    policy: AddressPolicy
    limits: ResponseLimits

    def _guarded_socket(self) -> socket.socket:
        self._deadline = time.monotonic() + self.limits.deadline
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        self.response_class = self._response
        return self.policy.connect(self.host, self.port, timeout)

    def _response(self, sock, *args, **kwargs):
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        return _BoundedResponse(
            sock, *args, per_read=timeout, deadline=self._deadline, limits=self.limits, **kwargs
        )


class GuardedHTTPConnection(_GuardedConnectionMixin, http.client.HTTPConnection):
    def __init__(self, *args, policy: AddressPolicy, limits: ResponseLimits, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy, self.limits = policy, limits

    def connect(self) -> None:
        self.sock = self._guarded_socket()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class GuardedHTTPSConnection(_GuardedConnectionMixin, http.client.HTTPSConnection):
    def __init__(self, *args, policy: AddressPolicy, limits: ResponseLimits, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy, self.limits = policy, limits

    def connect(self) -> None:
        sock = self._guarded_socket()
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: AddressPolicy, limits: ResponseLimits):
        super().__init__()
        self.policy, self.limits = policy, limits

    def http_open(self, req):
        return self.do_open(self._connection, req)

    def _connection(self, host, **kwargs):
        return GuardedHTTPConnection(host, policy=self.policy, limits=self.limits, **kwargs)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: AddressPolicy, limits: ResponseLimits):
        super().__init__()
        self.policy, self.limits = policy, limits

    def https_open(self, req):
        return self.do_open(self._connection, req, context=self._context)

    def _connection(self, host, **kwargs):
        return GuardedHTTPSConnection(host, policy=self.policy, limits=self.limits, **kwargs)


class _HttpOnlyRedirectHandler(urllib.request.HTTPRedirectHandler):
    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location:
            target = urllib.parse.urljoin(req.full_url, location.strip())
            scheme = urllib.parse.urlsplit(target).scheme.lower()
            if scheme not in _SCHEMES:
                fp.close()
                raise urllib.error.URLError(f"refused redirect to a {scheme or 'schemeless'}: URL")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def guarded_opener(policy: AddressPolicy, limits: ResponseLimits) -> urllib.request.OpenerDirector:
    """An opener for http(s) only, every connection checked by `policy`, responses bounded."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        _GuardedHTTPHandler(policy, limits),
        _GuardedHTTPSHandler(policy, limits),
        _HttpOnlyRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.UnknownHandler(),
    ):
        opener.add_handler(handler)
    return opener


# RFC 9309 asks a crawler to parse at least 500 KiB of a robots.txt.
ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_DISALLOWED = "Disallowed by robots.txt"


class RobotsCache:
    """robots.txt of each site, fetched once per process through the guarded opener (RFC 9309).

    A 4xx answer means no rules; a 5xx answer disallows the whole site, as RFC 9309 asks. A
    robots.txt that cannot be fetched at all (refused, unreachable, timed out) disallows the site
    too, and the reason given is that failure, not an opt-out the site never made.
    """

    def __init__(
        self,
        opener: urllib.request.OpenerDirector,
        user_agent: str,
        agent_token: str | None,
        timeout: float,
    ):
        self._opener = opener
        self._user_agent = user_agent
        self._token = agent_token or "*"
        self._timeout = timeout
        self._rules: dict[str, urllib.robotparser.RobotFileParser | str | None] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def refusal(self, url: str) -> str | None:
        """Why robots.txt forbids fetching `url`, or None when it may be fetched."""
        parts = urllib.parse.urlsplit(url)
        site = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        with self._guard:
            lock = self._locks.setdefault(site, threading.Lock())
        with lock:
            if site not in self._rules:
                self._rules[site] = self._fetch(site)
        rules = self._rules[site]
        if rules is None or isinstance(rules, str):
            return rules
        return None if rules.can_fetch(self._token, url) else ROBOTS_DISALLOWED

    def _fetch(self, site: str) -> urllib.robotparser.RobotFileParser | str | None:
        request = urllib.request.Request(
            f"{site}/robots.txt", headers={"User-Agent": self._user_agent}
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                body = response.read(ROBOTS_MAX_BYTES)
        except urllib.error.HTTPError as err:
            return None if 400 <= err.code < 500 else f"{ROBOTS_DISALLOWED} (HTTP {err.code})"
        except (OSError, http.client.HTTPException, ValueError) as err:
            return f"robots.txt unavailable: {err}"
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(body.decode("utf-8", "replace").splitlines())
        return parser
