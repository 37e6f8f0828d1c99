"""Service account tokens as kube-apiserver issues and checks them: JWTs signed with RS256 (an
RSA key) or ES256 (a P-256 key), `kid` the unpadded base64url SHA-256 of the public key's DER,
claims `iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti` and the private `kubernetes.io` claim
naming the namespace, the service account and what the token is bound to (pod, node, secret);
and the legacy tokens of kubernetes.io/service-account-token Secrets (issuer
kubernetes/serviceaccount, no audience, no expiry, valid while the Secret holds them).

The signing key comes from --service-account-signing-key-file, or is generated once into
<data-dir>/pki/sa.key (so tokens survive restarts); verification accepts that key and every
public key of --service-account-key-file. Whether the bound objects still exist is the
caller's question (`BoundChecker`): a token whose signature and times are good is still
refused when its pod or service account is gone."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# The issuer of the long-lived tokens kept in kubernetes.io/service-account-token Secrets.
LEGACY_ISSUER = "kubernetes/serviceaccount"
_LEGACY = "kubernetes.io/serviceaccount/"
# kube-apiserver gives a kube-api-access token (asked for 3607 s) a year of life and warns
# after 3607 s, so that clients that never re-read the file keep working
# (--service-account-extend-token-expiration).
WARN_ONLY_SECONDS = 3607
EXTENDED_SECONDS = 365 * 24 * 3600
# The leeway a bound token keeps after its pod's deletionTimestamp, as kube's validator.
DELETED_POD_GRACE = 60
# Clock skew tolerated on nbf/iat and exp, as square/go-jose's default leeway.
LEEWAY = 60
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


class KeyFileError(ValueError):
    """A key file that cannot be used: the message names the file."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(n: int) -> str:
    return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def key_id(public_key) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64(hashlib.sha256(der).digest())


def _algorithm(public_key) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1":
        return "ES256"
    raise KeyFileError("only RSA and P-256 ECDSA keys can sign service account tokens")


def jwk(public_key) -> dict:
    """The key as /openid/v1/jwks lists it."""
    entry = {"use": "sig", "kid": key_id(public_key), "alg": _algorithm(public_key)}
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {**entry, "kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
    numbers = public_key.public_numbers()
    return {**entry, "kty": "EC", "crv": "P-256", "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big"))}


def _load_private(path: str):
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
    except OSError as e:
        raise KeyFileError(f"--service-account-signing-key-file {path}: {e.strerror}") from None
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"--service-account-signing-key-file {path}: {e}") from None
    _algorithm(key.public_key())
    return key


def _load_public(path: str) -> list:
    """Every public key in a PEM file (public keys, private keys or certificates)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise KeyFileError(f"--service-account-key-file {path}: {e.strerror}") from None
    keys = []
    for match in _PEM_BLOCK.finditer(data):
        pem, kind = match.group(0), match.group(1)
        try:
            if kind.endswith(b"PRIVATE KEY"):
                keys.append(serialization.load_pem_private_key(pem, None).public_key())
            elif kind == b"CERTIFICATE":
                keys.append(x509.load_pem_x509_certificate(pem).public_key())
            elif kind.endswith(b"PUBLIC KEY"):
                keys.append(serialization.load_pem_public_key(pem))
        except (ValueError, TypeError) as e:
            raise KeyFileError(f"--service-account-key-file {path}: {e}") from None
    if not keys:
        raise KeyFileError(f"--service-account-key-file {path}: no public or private key found")
    return keys


def ensure_signing_key(pki_dir: str) -> str:
    """<pki>/sa.key, an RSA 2048 key made on first start."""
    path = os.path.join(pki_dir, "sa.key")
    if not os.path.exists(path):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Ref:
    name: str
    uid: str


@dataclass(frozen=True)
class Claims:
    """What a valid token says: the service account and the objects it is bound to."""
    namespace: str
    service_account: Ref
    audiences: tuple[str, ...]
    jti: str = ""
    pod: Ref | None = None
    node: Ref | None = None
    secret: Ref | None = None
    legacy_token: str = ""  # a Secret's token: valid while the Secret still holds it

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account.name}"


# (claims) -> an error text when a bound object is gone or differs, None when all is well
BoundChecker = Callable[[Claims], "str | None"]


@dataclass
class TokenIssuer:
    signing_key: object
    issuers: tuple[str, ...] = (DEFAULT_ISSUER,)
    api_audiences: tuple[str, ...] = (DEFAULT_ISSUER,)
    verify_keys: list = field(default_factory=list)
    extend_expiration: bool = True
    clock: Callable[[], float] = time.time

    @classmethod
    def from_files(cls, signing_key_file: str, key_files: list[str], issuers: list[str],
                   api_audiences: list[str], extend_expiration: bool = True) -> "TokenIssuer":
        key = _load_private(signing_key_file)
        verify = [key.public_key()]
        for path in key_files:
            verify += _load_public(path)
        issuers = [i for i in issuers if i] or [DEFAULT_ISSUER]
        return cls(key, tuple(issuers), tuple(api_audiences or issuers[:1]), verify,
                   extend_expiration)

    @property
    def issuer(self) -> str:
        return self.issuers[0]

    def public_keys(self) -> list:
        seen, keys = set(), []
        for k in self.verify_keys or [self.signing_key.public_key()]:
            if key_id(k) not in seen:
                seen.add(key_id(k))
                keys.append(k)
        return keys

    def jwks(self) -> dict:
        return {"keys": [jwk(k) for k in self.public_keys()]}

    # issuing

    def issue(self, namespace: str, service_account: Ref, audiences: list[str],
              expiration_seconds: int, pod: Ref | None = None, node: Ref | None = None,
              secret: Ref | None = None) -> tuple[str, int]:
        """The signed token and its issue time (the expiry a TokenRequest reports is
        iat + expiration_seconds, even when the token itself lives longer)."""
        now = int(self.clock())
        private: dict = {"namespace": namespace,
                         "serviceaccount": {"name": service_account.name,
                                            "uid": service_account.uid}}
        lifetime = expiration_seconds
        if self.extend_expiration and pod is not None and \
                expiration_seconds == WARN_ONLY_SECONDS and \
                set(audiences) <= set(self.api_audiences):
            lifetime = EXTENDED_SECONDS
            private["warnafter"] = now + WARN_ONLY_SECONDS
        for name, ref in (("pod", pod), ("node", node), ("secret", secret)):
            if ref is not None:
                private[name] = {"name": ref.name, "uid": ref.uid}
        claims = {"aud": list(audiences), "exp": now + lifetime, "iat": now,
                  "iss": self.issuer, "jti": str(uuid.uuid4()), "kubernetes.io": private,
                  "nbf": now, "sub": f"system:serviceaccount:{namespace}:{service_account.name}"}
        return self._sign(claims), now

    def issue_legacy(self, namespace: str, service_account: Ref, secret_name: str) -> str:
        """The token of a kubernetes.io/service-account-token Secret: no audience, no expiry
        (kube's legacy claims)."""
        return self._sign({"iss": LEGACY_ISSUER, f"{_LEGACY}namespace": namespace,
                           f"{_LEGACY}secret.name": secret_name,
                           f"{_LEGACY}service-account.name": service_account.name,
                           f"{_LEGACY}service-account.uid": service_account.uid,
                           "sub": f"system:serviceaccount:{namespace}:{service_account.name}"})

    def _sign(self, claims: dict) -> str:
        public = self.signing_key.public_key()
        header = {"alg": _algorithm(public), "kid": key_id(public)}
        signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         _b64(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if isinstance(self.signing_key, rsa.RSAPrivateKey):
            signature = self.signing_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.signing_key.sign(signing_input,
                                                              ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input.decode() + "." + _b64(signature)

    # checking

    def verify(self, token: str, audiences: tuple[str, ...] | list[str],
               bound: BoundChecker | None = None) -> tuple[Claims | None, str]:
        """(claims, "") for a token of ours that is valid for one of `audiences` (the claims'
        audiences are then those of the token among them); (None, why) otherwise."""
        payload = self._checked_payload(token)
        if isinstance(payload, str):
            return None, payload
        if payload.get("iss") == LEGACY_ISSUER:
            return self._verify_legacy(token, payload, audiences, bound)
        now = self.clock()
        try:
            exp, nbf = float(payload["exp"]), float(payload.get("nbf", payload.get("iat", 0)))
        except (KeyError, TypeError, ValueError):
            return None, "service account token has no valid exp claim"
        if now > exp + LEEWAY:
            return None, "service account token has expired"
        if now + LEEWAY < nbf:
            return None, "service account token is not valid yet"
        aud = payload.get("aud")
        aud = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        matched = tuple(a for a in audiences if a in aud)
        if not matched:
            return None, "token audiences are not valid for this server"
        private = payload.get("kubernetes.io")
        if not isinstance(private, dict):
            return None, "service account token claims are missing kubernetes.io"
        sa = private.get("serviceaccount") or {}
        namespace = private.get("namespace")
        if not isinstance(namespace, str) or not isinstance(sa, dict) or not sa.get("name"):
            return None, "service account token names no service account"
        if payload.get("sub") != f"system:serviceaccount:{namespace}:{sa['name']}":
            return None, "service account token's subject does not match its claims"
        refs = {}
        for name in ("pod", "node", "secret"):
            value = private.get(name)
            refs[name] = Ref(str(value.get("name", "")), str(value.get("uid", ""))) \
                if isinstance(value, dict) else None
        claims = Claims(namespace, Ref(str(sa["name"]), str(sa.get("uid", ""))), matched,
                        str(payload.get("jti", "")), refs["pod"], refs["node"], refs["secret"])
        if bound is not None:
            why = bound(claims)
            if why:
                return None, why
        return claims, ""

    def _verify_legacy(self, token: str, payload: dict, audiences: tuple[str, ...] | list[str],
                       bound: BoundChecker | None) -> tuple[Claims | None, str]:
        """A Secret's token: valid for the API's own audiences, as kube's legacy validator."""
        matched = tuple(a for a in audiences if a in self.api_audiences)
        if not matched:
            return None, "token audiences are not valid for this server"
        names = {k: payload.get(_LEGACY + k) for k in ("namespace", "secret.name",
                                                      "service-account.name",
                                                      "service-account.uid")}
        if not all(isinstance(v, str) and v for v in names.values()):
            return None, "service account token claims are incomplete"
        namespace, account = names["namespace"], names["service-account.name"]
        if payload.get("sub") != f"system:serviceaccount:{namespace}:{account}":
            return None, "service account token's subject does not match its claims"
        claims = Claims(namespace, Ref(account, names["service-account.uid"]), matched,
                        secret=Ref(names["secret.name"], ""), legacy_token=token)
        why = bound(claims) if bound is not None else None
        return (None, why) if why else (claims, "")

    def _checked_payload(self, token: str) -> dict | str:
        parts = token.split(".")
        if len(parts) != 3:
            return "not a JWT"
        try:
            header = json.loads(_unb64(parts[0]))
            payload = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, UnicodeDecodeError):
            return "not a JWT"
        if not isinstance(header, dict) or not isinstance(payload, dict):
            return "not a JWT"
        if payload.get("iss") not in self.issuers + (LEGACY_ISSUER,):
            return "token issuer is not ours"
        signing_input = (parts[0] + "." + parts[1]).encode()
        for key in self.public_keys():
            if header.get("kid") not in (None, key_id(key)) or \
                    header.get("alg") != _algorithm(key):
                continue
            if _signature_ok(key, signing_input, signature):
                return payload
        return "invalid signature"


def _signature_ok(key, data: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            if len(signature) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                       int.from_bytes(signature[32:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def openid_configuration(issuer: str, jwks_uri: str, algorithms: list[str]) -> dict:
    """/.well-known/openid-configuration as kube-apiserver serves it."""
    return {"issuer": issuer, "jwks_uri": jwks_uri, "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sorted(set(algorithms))}
