"""API identity and access: bearer tokens (JWT, verified by PyJWT with configured keys) and scopes per route.

Every route declares its scope once, in :data:`streams.api_spec.ROUTES`; :func:`guard` is the
middleware that enforces it. Keys: an HS256 shared secret (small set-ups; :func:`mint` and
``fleet token`` issue such tokens), an RS256/ES256 public key, or an identity provider's JWKS
file (keys chosen by ``kid``). Scopes come from the ``scope`` claim (space-separated, OAuth 2)
or ``scp`` (a list or string, as Azure AD and Okta issue them); ``admin`` grants every scope.

>>> secret = "s" * 32
>>> v = TokenVerifier(hs256_secret=secret)
>>> p = v.verify(mint(secret, "ops.jane", ["alerts:read", "alerts:ack"], ttl_s=60))
>>> p.sub, p.allows("alerts:ack"), p.allows("admin")
('ops.jane', True, False)
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web as aioweb

from twins.errors import ConfigurationError, FleetAssuranceError

log = logging.getLogger(__name__)

#: Every scope a token can carry. ``admin`` implies all others.
SCOPES: tuple[str, ...] = ("twins:read", "fleet:read", "alerts:read", "alerts:ack", "charging:read",
                           "metrics:read", "admin")
PUBLIC = "public"                # no token (health and readiness probes)
AUTHENTICATED = "authenticated"  # any valid token
METRICS = "metrics"              # per FLEET_METRICS_ACCESS
ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
SUB_MAX = 128


class AuthError(FleetAssuranceError):
    """A request without a valid token (401) or without the route's scope (403)."""

    def __init__(self, message: str, status: int = 401, scope: str | None = None, sub: str | None = None) -> None:
        self.status = status
        self.scope = scope
        self.sub = sub
        super().__init__(message)

    def response(self) -> aioweb.Response:
        """The 401/403 answer, with the RFC 6750 ``WWW-Authenticate`` challenge."""
        code = "insufficient_scope" if self.status == 403 else "invalid_token"
        challenge = f'Bearer realm="fleet-assurance", error="{code}"'
        body: dict[str, Any] = {"error": str(self)}
        if self.scope:
            challenge += f', scope="{self.scope}"'
            body["required_scope"] = self.scope
        return aioweb.json_response(body, status=self.status, headers={"WWW-Authenticate": challenge})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject and scopes."""

    sub: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """True when the principal may use a route of ``scope``."""
        return scope in (PUBLIC, AUTHENTICATED) or scope in self.scopes or "admin" in self.scopes


def mint(secret: str, sub: str, scopes: Iterable[str], ttl_s: float, issuer: str | None = None,
         audience: str | None = None, now_s: float | None = None) -> str:
    """An HS256 token for ``sub`` with ``scopes`` valid for ``ttl_s`` seconds."""
    scopes = list(scopes)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; scopes are {list(SCOPES)}")
    if not 0 < ttl_s <= 366 * 86_400:
        raise ValueError(f"ttl must be between 1 s and 366 days, got {ttl_s:g} s")
    now = int(time.time() if now_s is None else now_s)
    claims: dict[str, Any] = {"sub": sub, "scope": " ".join(scopes), "iat": now, "nbf": now,
                              "exp": now + int(ttl_s), "jti": uuid.uuid4().hex}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


class TokenVerifier:
    """Checks signature, ``exp``/``nbf`` (with leeway), ``iss``/``aud`` when configured, and reads the scopes."""

    def __init__(self, hs256_secret: str | None = None, public_key_file: Path | None = None,
                 jwks_file: Path | None = None, issuer: str | None = None, audience: str | None = None,
                 leeway_s: float = 30.0) -> None:
        self.secret = hs256_secret
        self.public_key: Any = None
        self.jwks: dict[str, Any] = {}
        try:
            if public_key_file is not None:
                self.public_key = jwt.PyJWK.from_dict(_pem_to_jwk(public_key_file.read_bytes())).key
            if jwks_file is not None:
                keyset = jwt.PyJWKSet.from_json(jwks_file.read_text())
                self.jwks = {k.key_id or "": k for k in keyset.keys}
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            raise ConfigurationError(f"token keys cannot be loaded: {type(exc).__name__}: {exc}") from None
        if not (self.secret or self.public_key is not None or self.jwks):
            raise ConfigurationError("FLEET_AUTH_MODE=jwt needs FLEET_AUTH_HS256_SECRET, FLEET_AUTH_PUBLIC_KEY_FILE "
                                     "or FLEET_AUTH_JWKS_FILE (FLEET_AUTH_MODE=off only for development)")
        self.issuer, self.audience, self.leeway_s = issuer, audience, leeway_s

    def _key(self, header: dict[str, Any]) -> tuple[Any, str]:
        alg = header.get("alg")
        if alg == "HS256" and self.secret:
            return self.secret, alg
        if alg in ASYMMETRIC:
            kid = header.get("kid")
            if self.jwks:
                jwk = self.jwks.get(kid or "") or (next(iter(self.jwks.values())) if len(self.jwks) == 1 else None)
                if jwk is not None:
                    return jwk.key, alg
            if self.public_key is not None:
                return self.public_key, alg
        raise AuthError(f"token algorithm {str(alg)[:16]!r} with kid {str(header.get('kid'))[:40]!r} has no "
                        "configured key")

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`AuthError` (401) naming what is wrong otherwise."""
        try:
            key, alg = self._key(jwt.get_unverified_header(token))
            claims = jwt.decode(token, key, algorithms=[alg], issuer=self.issuer, audience=self.audience,
                                leeway=self.leeway_s, options={"require": ["exp", "sub"],
                                                               "verify_aud": self.audience is not None})
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except (jwt.PyJWTError, TypeError, ValueError) as exc:  # a key of the wrong type for alg raises TypeError
            raise AuthError(f"invalid token: {str(exc)[:200]}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > SUB_MAX or not sub.isprintable():
            raise AuthError(f"token sub must be 1 to {SUB_MAX} printable characters")
        return Principal(sub, frozenset(_scopes(claims)))


def _scopes(claims: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name in ("scope", "scp", "scopes"):
        value = claims.get(name)
        if isinstance(value, str):
            out += value.split()
        elif isinstance(value, list):
            out += [v for v in value if isinstance(v, str)]
    return out


def _pem_to_jwk(pem: bytes) -> dict[str, Any]:
    """A PEM public key as a JWK dict (PyJWT picks RSA or EC from it)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem)
    if isinstance(key, rsa.RSAPublicKey):
        return json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    if isinstance(key, ec.EllipticCurvePublicKey):
        return json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
    raise ValueError("the public key must be RSA or EC")


def bearer_token(request: aioweb.Request, allow_query: bool) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (or ``?access_token=`` where allowed)."""
    header = request.headers.get("Authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() == "bearer" and token.strip():
        return token.strip()
    if allow_query:
        return request.query.get("access_token") or None
    return None


Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]
Denied = Callable[[aioweb.Request, AuthError], Awaitable[None]]


def guard(scope_of: dict[tuple[str, str], str], verifier: TokenVerifier | None, metrics_access: str,
          query_token_paths: set[str], on_denied: Denied) -> Any:
    """The middleware: the route's declared scope, a valid token that carries it, or 401/403.

    ``verifier`` None means FLEET_AUTH_MODE=off (every request is the development principal).
    """

    @aioweb.middleware
    async def middleware(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else None
        scope = scope_of.get(("GET" if request.method == "HEAD" else request.method, path or ""))
        if scope is None:  # not a route of ours: the router's own 404/405
            return await handler(request)
        if scope == METRICS:
            if metrics_access == "port":
                return aioweb.json_response({"error": "metrics are served on FLEET_METRICS_PORT"}, status=404)
            scope = PUBLIC if metrics_access == "open" else "metrics:read"
        if scope == PUBLIC:
            return await handler(request)
        if verifier is None:
            request["principal"] = DEVELOPMENT
            return await handler(request)
        try:
            token = bearer_token(request, allow_query=path in query_token_paths)
            if token is None:
                raise AuthError("a bearer token is required (Authorization: Bearer <token>)")
            principal = verifier.verify(token)
            if not principal.allows(scope):
                raise AuthError(f"the token of {principal.sub!r} lacks scope {scope}", 403, scope, principal.sub)
        except AuthError as exc:
            await on_denied(request, exc)
            return exc.response()
        request["principal"] = principal
        return await handler(request)

    return middleware


#: The caller when FLEET_AUTH_MODE=off.
DEVELOPMENT = Principal("anonymous (auth off)", frozenset(SCOPES))


def peer_token(secret: str | None, service_token: str | None, app_id: str, cache: dict[str, Any]) -> str | None:
    """The token a worker sends its peers when no caller's token is at hand (minted from the HS256 secret,
    renewed a minute before it expires, or the configured service token)."""
    if secret:
        now = time.time()
        if cache.get("exp", 0) - 60 < now:
            cache["token"], cache["exp"] = mint(secret, f"worker:{app_id}", ["twins:read", "fleet:read"], 600), now + 600
        return str(cache["token"])
    return service_token


def peer_headers(app: Any, request: aioweb.Request | None = None) -> dict[str, str]:
    """Headers for a worker-to-worker request: the caller's token when there is a caller, else the worker's."""
    auth = request.headers.get("Authorization") if request is not None else None
    if not auth:
        s = app.fleet_settings
        token = peer_token(s.auth_hs256_secret.get_secret_value() if s.auth_hs256_secret else None,
                           s.auth_service_token.get_secret_value() if s.auth_service_token else None,
                           s.app_id, app.__dict__.setdefault("_peer_token", {}))
        auth = f"Bearer {token}" if token else None
    return {"Authorization": auth} if auth else {}


def principal_of(request: aioweb.Request) -> Principal:
    """The principal the guard attached to ``request`` (a route without one is a wiring error: 401)."""
    principal = request.get("principal")
    if principal is None:
        raise AuthError("this route has no declared scope, so it has no caller")
    return principal
