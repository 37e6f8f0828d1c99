"""A client for the OCI distribution API (GET side): the /v2/ ping, manifests, blobs, and the
auth flows: Bearer tokens (401 + WWW-Authenticate, docker's token protocol) and basic auth.

TLS is verified, except for a registry the caller names insecure: that one is tried over HTTPS
without verification, then over plain HTTP (docker's insecure-registries behaviour). Tokens are
fetched with verification unless the realm is on the insecure registry itself.
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import urllib.parse
from collections.abc import Callable

from overlay import digest as digest_mod, manifest as m
from overlay.blobs import BlobWriter
from overlay.errors import ImageError
from overlay.store import Store

_TIMEOUT = 60
_MAX_REDIRECTS = 5
_MAX_MANIFEST = 4 << 20
_CHUNK = 1 << 16
_ATTEMPTS = 3
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
Progress = Callable[[int, int], None]


class _Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage,
                 raw: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw
        self._conn = conn

    def read(self, limit: int | None = None) -> bytes:
        return self.raw.read(limit) if limit else self.raw.read()

    def close(self) -> None:
        self._conn.close()


class RegistryClient:
    def __init__(self, host: str, insecure: bool = False,
                 credentials: tuple[str, str] | None = None) -> None:
        self.host = host
        self.insecure = insecure
        self.credentials = credentials
        self._scheme: str | None = None
        self._challenge: tuple[str, dict] | None = None
        self._tokens: dict[str, str] = {}

    # -- the API -------------------------------------------------------------------------------

    def manifest(self, repository: str, ref: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index; the digest is verified when
        `ref` is one."""
        resp = self._get(repository, f"/v2/{repository}/manifests/{ref}", {"Accept": m.ACCEPT})
        try:
            self._check(resp, f"manifest {repository}:{ref}")
            data = resp.read(_MAX_MANIFEST + 1)
        finally:
            resp.close()
        if len(data) > _MAX_MANIFEST:
            raise ImageError(f"manifest {repository}:{ref}: larger than {_MAX_MANIFEST} bytes")
        actual = digest_mod.of_bytes(data)
        if ref.startswith("sha256:") and actual != ref:
            raise ImageError(f"manifest {repository}@{ref}: the registry sent content with "
                             f"digest {actual}: refused")
        media_type, _ = m.media_type_of(data, resp.headers.get("Content-Type"),
                                        f"manifest {repository}:{ref}")
        return data, media_type, actual

    def fetch_blob(self, store: Store, repository: str, desc: m.Descriptor,
                   progress: Progress | None = None) -> bool:
        """Downloads the blob into the store unless it is there; True if it downloaded. Resumes
        a partial download (Range) left by an earlier attempt or a broken connection; restarts
        from zero when the server will not resume or the resumed content is wrong."""
        hex_ = digest_mod.hex_of(desc.digest)
        with store.lock("blob-" + hex_):
            if store.has_blob(desc.digest):
                return False
            failures = 0
            restarted = False
            while True:
                writer = BlobWriter(store, desc.digest, resumable=True)
                resumed = writer.offset > 0
                try:
                    if writer.offset > desc.size:
                        writer.restart()
                    self._download(repository, desc, writer, progress)
                    writer.commit(desc.size)
                    return True
                except ImageError:
                    if not resumed or restarted:
                        raise
                    writer.discard()  # the resumed part may be what is wrong: once from zero
                    restarted = True
                except (OSError, http.client.HTTPException) as e:
                    failures += 1
                    if failures >= _ATTEMPTS:
                        raise ImageError(f"blob {desc.digest}: download failed {failures} times, "
                                         f"last: {e or type(e).__name__}") from None
                finally:
                    writer.close()

    def _download(self, repository: str, desc: m.Descriptor, writer: BlobWriter,
                  progress: Progress | None) -> None:
        headers = {"Range": f"bytes={writer.offset}-"} if writer.offset else {}
        resp = self._get(repository, f"/v2/{repository}/blobs/{desc.digest}", headers)
        try:
            if resp.status == 416 and writer.offset == desc.size:
                return  # all there already; commit verifies
            self._check(resp, f"blob {desc.digest}")
            if resp.status == 206:
                start = _range_start(resp.headers.get("Content-Range", ""))
                if start != writer.offset:
                    writer.restart()
                    raise http.client.HTTPException(f"asked for bytes from {writer.offset}, got "
                                                    f"from {start}")
            else:
                writer.restart()  # a plain 200: the whole blob again
            length = resp.headers.get("Content-Length")
            expected_end = writer.offset + int(length) if length and length.isdigit() else None
            if progress:
                progress(writer.offset, desc.size)
            while chunk := resp.raw.read(_CHUNK):
                writer.write(chunk)
                if writer.offset > desc.size:
                    raise ImageError(f"blob {desc.digest}: more than its {desc.size} bytes: "
                                     "refused")
                if progress:
                    progress(writer.offset, desc.size)
            if expected_end is not None and writer.offset < expected_end:
                raise http.client.IncompleteRead(b"", expected_end - writer.offset)
        finally:
            resp.close()

    # -- requests, auth, redirects --------------------------------------------------------------

    def _get(self, repository: str, path: str, headers: dict[str, str]) -> _Response:
        if self._scheme is None:
            self._ping()
        retried = False
        while True:
            auth = self._authorization(repository)
            resp = self._request(f"{self._scheme}://{self.host}{path}", headers, auth, self.host)
            if resp.status != 401 or retried:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.close()
            self._challenge = _parse_challenge(challenge)
            self._tokens.pop(repository, None)
            retried = True

    def _ping(self) -> None:
        schemes = ("https", "http") if self.insecure else ("https",)
        for scheme in schemes:
            try:
                resp = self._request(f"{scheme}://{self.host}/v2/", {}, None, self.host)
            except (ssl.SSLError, ConnectionError) as e:
                if scheme != schemes[-1]:
                    continue
                hint = "; if it serves plain HTTP, pull with --insecure" \
                    if isinstance(e, ssl.SSLError) and not self.insecure else ""
                raise ImageError(f"registry {self.host}: {e.strerror or e}{hint}") from None
            except OSError as e:
                raise ImageError(f"registry {self.host}: {e.strerror or e}") from None
            try:
                if resp.status == 401:
                    self._challenge = _parse_challenge(resp.headers.get("WWW-Authenticate", ""))
                elif resp.status >= 400:
                    raise ImageError(f"registry {self.host}: /v2/ answered {resp.status}; not a "
                                     "registry?")
            finally:
                resp.close()
            self._scheme = scheme
            return

    def _authorization(self, repository: str) -> str | None:
        if self._challenge is None:
            return None
        kind, params = self._challenge
        if kind == "basic":
            return self._basic()
        if repository not in self._tokens:
            self._tokens[repository] = self._token(params, repository)
        return f"Bearer {self._tokens[repository]}"

    def _basic(self) -> str:
        if self.credentials is None:
            raise ImageError(f"registry {self.host}: asks for a login and no credentials are "
                             "configured (docker config.json)")
        user, password = self.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def _token(self, params: dict, repository: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise ImageError(f"registry {self.host}: Bearer challenge without a realm")
        query = {"scope": f"repository:{repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        separator = "&" if "?" in realm else "?"
        url = realm + separator + urllib.parse.urlencode(query)
        auth = self._basic() if self.credentials else None
        resp = self._request(url, {}, auth, urllib.parse.urlsplit(realm).netloc)
        try:
            if resp.status == 401:
                raise ImageError(f"registry {self.host}: the token service {realm} refused "
                                 f"{'the credentials' if auth else 'an anonymous request'}")
            self._check(resp, f"token from {realm}")
            try:
                answer = json.loads(resp.read(1 << 20))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ImageError(f"registry {self.host}: the token service {realm} sent no "
                                 "JSON") from None
        finally:
            resp.close()
        token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) \
            else None
        if not isinstance(token, str) or not token:
            raise ImageError(f"registry {self.host}: the token service {realm} sent no token")
        return token

    def _request(self, url: str, headers: dict[str, str], auth: str | None,
                 auth_host: str) -> _Response:
        """GET `url`, following redirects; the Authorization header goes to `auth_host` only (a
        redirect to blob storage carries its own credentials in the URL)."""
        for _ in range(_MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ImageError(f"registry {self.host}: bad URL {url!r}")
            if parts.scheme == "http" and not self._insecure_ok(parts.netloc):
                raise ImageError(f"registry {self.host}: refusing plain HTTP to {parts.netloc} "
                                 "(only a registry named insecure may use it)")
            conn = self._connection(parts.scheme, parts.netloc)
            send = dict(headers, **{"User-Agent": "pycontainer"})
            if auth and parts.netloc == auth_host:
                send["Authorization"] = auth
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            try:
                conn.request("GET", target, headers=send)
                raw = conn.getresponse()
            except BaseException:
                conn.close()
                raise
            if raw.status in (301, 302, 303, 307, 308) and raw.getheader("Location"):
                url = urllib.parse.urljoin(url, raw.getheader("Location"))
                conn.close()
                continue
            return _Response(raw.status, raw.headers, raw, conn)
        raise ImageError(f"registry {self.host}: too many redirects")

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=_TIMEOUT)
        context = ssl.create_default_context()
        if self._insecure_ok(netloc):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(netloc, timeout=_TIMEOUT, context=context)

    def _insecure_ok(self, netloc: str) -> bool:
        """The insecure registry's host, on any port (its token service may listen beside it)."""
        return self.insecure and _hostname(netloc) == _hostname(self.host)

    def _check(self, resp: _Response, what: str) -> None:
        if resp.status in (200, 206):
            return
        detail = ""
        try:
            body = json.loads(resp.read(1 << 16))
            errors = body.get("errors") if isinstance(body, dict) else None
            if errors:
                detail = ": " + "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except (ValueError, AttributeError, OSError, http.client.HTTPException):
            pass
        if resp.status == 404:
            raise ImageError(f"{what}: not found on {self.host}{detail}")
        if resp.status in (401, 403):
            raise ImageError(f"{what}: access denied by {self.host} ({resp.status}){detail}")
        raise ImageError(f"{what}: {self.host} answered {resp.status}{detail}")


def _parse_challenge(header: str) -> tuple[str, dict]:
    kind, _, rest = header.strip().partition(" ")
    kind = kind.lower()
    if kind not in ("bearer", "basic"):
        raise ImageError(f"registry: unsupported authentication challenge {header!r}")
    return kind, dict(_CHALLENGE_PARAM.findall(rest))


def _hostname(netloc: str) -> str:
    return urllib.parse.urlsplit("//" + netloc).hostname or netloc


def _range_start(content_range: str) -> int:
    match = re.match(r"bytes (\d+)-", content_range)
    return int(match.group(1)) if match else -1
