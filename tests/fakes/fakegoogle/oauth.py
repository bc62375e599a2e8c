"""Fake OAuth 2.0 token endpoint (POST /token, target "token") and the Bearer check for every API.

Grants (application/x-www-form-urlencoded only):
  urn:ietf:params:oauth:grant-type:jwt-bearer  assertion=<RS256 JWT signed with a --service-account key>
  refresh_token                               client_id, client_secret, refresh_token of an --authorized-user file
Success: 200 {"access_token":"fake-at-<n>","expires_in":<lifetime>,"token_type":"Bearer"}.
Errors use the token endpoint's own body, {"error": ..., "error_description": ...} (notes §1.4).

Control:
  POST /_fake/token_lifetime {"seconds": N}   expires_in of tokens issued from now on (default 3599)
  GET  /_fake/tokens                          {"issued": n, "tokens": [...], "rejections": [...]}
  POST /_fake/expire_tokens                   every issued token is expired from now on
"""

import base64
import json
import re
import sys
import time
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .server import Response

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CANONICAL_TOKEN_URL = "https://oauth2.googleapis.com/token"
BAD_SIGNATURE = "Invalid JWT Signature."
BAD_TIME = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your "
            "iat and exp values in the JWT claim.")
REVOKED = "Token has been expired or revoked."
IAT_SKEW_S = 60
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url_decode(part):
    if not _B64URL.fullmatch(part):
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class ServiceAccountKey:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        self.path = path
        self.email = info["client_email"]
        self.kid = info.get("private_key_id")
        key = serialization.load_pem_private_key(info["private_key"].encode("ascii"), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: private_key is not an RSA key")
        self.public_key = key.public_key()


class OAuth:
    def __init__(self, service_account_files=(), authorized_user_files=(), default_lifetime=3599):
        self.keys = [ServiceAccountKey(p) for p in service_account_files]
        self.users = []
        for p in authorized_user_files:
            with open(p, encoding="utf-8") as f:
                info = json.load(f)
            self.users.append({k: info[k] for k in ("client_id", "client_secret", "refresh_token")})
        self.default_lifetime = default_lifetime
        self.counter = 0               # never reset, so a token cached across a reset stays invalid
        self.reset()

    def reset(self):
        self.lifetime = self.default_lifetime
        self.tokens = {}
        self.rejections = []

    def register(self, app):
        self.app = app
        app.add_route("POST", r"/token", "token", self.token, auth=False)
        app.add_control("POST", r"/_fake/token_lifetime", self._ctl_lifetime)
        app.add_control("GET", r"/_fake/tokens", self._ctl_tokens)
        app.add_control("POST", r"/_fake/expire_tokens", self._ctl_expire)
        app.authenticator = self.check_bearer

    # --- control ---
    def _ctl_lifetime(self, req, m):
        try:
            seconds = int(req.json()["seconds"])
        except Exception:
            return Response.json(400, {"error": "body must be {\"seconds\": N}"})
        with self.app.lock:
            self.lifetime = seconds
        return Response.json(200, {"seconds": seconds})

    def _ctl_tokens(self, req, m):
        now = time.time()
        with self.app.lock:
            tokens = [{"token": t, "grant_type": r["grant_type"], "subject": r["subject"], "scope": r["scope"],
                       "expires_in": r["expires_in"], "expired": r["expires_at"] <= now}
                      for t, r in self.tokens.items()]
            return Response.json(200, {"issued": len(tokens), "tokens": tokens, "rejections": list(self.rejections)})

    def _ctl_expire(self, req, m):
        with self.app.lock:
            for r in self.tokens.values():
                r["expires_at"] = 0
            return Response.json(200, {"expired": len(self.tokens)})

    # --- Bearer check for every API route ---
    def check_bearer(self, req):
        auth = req.header("authorization", "")
        scheme, _, token = auth.partition(" ")
        rec = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if rec is not None and rec["expires_at"] > time.time():
            req.auth = rec
            return None
        return Response.json(401, {"error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                       "other valid authentication credential. See "
                       "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                        "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED"}},
            {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})

    # --- POST /token ---
    def token(self, req, m):
        if req.media_type() != "application/x-www-form-urlencoded":
            return self._reject(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded",
                                "content-type " + repr(req.media_type()))
        try:
            form = urllib.parse.parse_qs(req.body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(req.body))
        except (UnicodeDecodeError, ValueError):
            return self._reject(400, "invalid_request", "Malformed form body", "malformed form body")
        f = {k: v[-1] for k, v in form.items()}
        grant = f.get("grant_type")
        if grant == JWT_GRANT:
            return self._jwt_grant(req, f)
        if grant == "refresh_token":
            return self._refresh_grant(f)
        if not grant:
            return self._reject(400, "invalid_request", "Missing required parameter: grant_type", "no grant_type")
        return self._reject(400, "unsupported_grant_type", f"Invalid grant_type: {grant}", "grant " + grant)

    def _reject(self, status, error, description, why):
        self.rejections.append({"error": error, "why": why})
        sys.stderr.write(f"[{self.app.name}] token rejected: {why}\n")
        return Response.json(status, {"error": error, "error_description": description})

    def _issue(self, grant_type, subject, scope, extra=None):
        self.counter += 1
        token = f"fake-at-{self.counter}"
        self.tokens[token] = {"grant_type": grant_type, "subject": subject, "scope": scope,
                              "expires_in": self.lifetime, "expires_at": time.time() + self.lifetime}
        body = {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"}
        body.update(extra or {})
        return Response.json(200, body, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"})

    def _jwt_grant(self, req, f):
        assertion = f.get("assertion")
        if not assertion:
            return self._reject(400, "invalid_request", "Missing required parameter: assertion", "no assertion")
        parts = assertion.split(".")
        if len(parts) != 3:
            return self._reject(400, "invalid_grant", BAD_SIGNATURE, "assertion is not three dot-separated parts")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError) as e:
            return self._reject(400, "invalid_grant", BAD_SIGNATURE, f"undecodable JWT part: {e}")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return self._reject(400, "invalid_grant", BAD_SIGNATURE, "JWT header/claims are not JSON objects")
        if header.get("alg") != "RS256":
            return self._reject(400, "invalid_grant", BAD_SIGNATURE, f"alg {header.get('alg')!r} is not RS256")

        iss = claims.get("iss")
        kid = header.get("kid")
        if kid is not None:
            key = next((k for k in self.keys if k.kid == kid), None)
            if key is None:
                return self._reject(400, "invalid_grant", BAD_SIGNATURE, f"unknown kid {kid!r}")
        else:
            key = next((k for k in self.keys if k.email == iss), None)
            if key is None:
                return self._reject(400, "invalid_grant", BAD_SIGNATURE, f"unknown iss {iss!r} (and no kid)")
        if iss != key.email:
            return self._reject(400, "invalid_grant", BAD_SIGNATURE, f"iss {iss!r} is not {key.email!r} of kid {kid!r}")
        signing_input = (parts[0] + "." + parts[1]).encode("ascii")
        try:
            key.public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self._reject(400, "invalid_grant", BAD_SIGNATURE, "RS256 signature does not verify")

        accepted_aud = {CANONICAL_TOKEN_URL, f"{self.app.base_url}/token"}
        if req.host_url():
            accepted_aud.add(f"{req.host_url()}/token")
        if claims.get("aud") not in accepted_aud:
            return self._reject(400, "invalid_grant", BAD_SIGNATURE,
                                f"aud {claims.get('aud')!r} not in {sorted(accepted_aud)}")
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.strip():
            return self._reject(400, "invalid_grant", BAD_SIGNATURE, "scope missing or empty")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (iat, exp)):
            return self._reject(400, "invalid_grant", BAD_TIME, f"iat {iat!r} / exp {exp!r} are not numbers")
        now = time.time()
        if exp - iat > 3600 or exp <= iat:
            return self._reject(400, "invalid_grant", BAD_TIME, f"exp - iat = {exp - iat} (must be 1..3600)")
        if iat > now + IAT_SKEW_S:
            return self._reject(400, "invalid_grant", BAD_TIME, f"iat is {iat - now:.0f} s in the future")
        if exp <= now:
            return self._reject(400, "invalid_grant", BAD_TIME, f"exp passed {now - exp:.0f} s ago")
        subject = claims.get("sub") or key.email
        return self._issue("service_account", subject, scope)

    def _refresh_grant(self, f):
        for u in self.users:
            if (f.get("client_id") == u["client_id"] and f.get("client_secret") == u["client_secret"]
                    and f.get("refresh_token") == u["refresh_token"]):
                extra = {"scope": f["scope"]} if f.get("scope") else None
                return self._issue("authorized_user", u["client_id"], f.get("scope"), extra)
        return self._reject(400, "invalid_grant", REVOKED, "refresh grant does not match any --authorized-user file")
