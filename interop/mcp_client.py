#!/usr/bin/env python3
"""An MCP client for the gateway tests, built with the official MCP Python SDK:
its Streamable HTTP transport and its OAuth client-credentials support
(`PrivateKeyJWTOAuthProvider`, private_key_jwt per RFC 7523).

    mcp_client.py URL --client-id ID --key KEY [--scope S] [--issuer ISSUER]
    mcp_client.py URL --token TOKEN      # a static `Authorization: Bearer TOKEN`
    mcp_client.py URL --no-auth          # e.g. straight at interop/mcp_upstream.py

URL is the MCP endpoint, `<base>/gw/<resource>` through Mandate's gateway.
KEY is the agent's private key: a PEM file (EC P-256, signs ES256), or a JSON
file with a private JWK (its `kid`, if any, goes into the assertion header),
or `openid_client.mjs keygen`'s private-keys.json (its `agent` member).
`--issuer` pins the authorization server the SDK may send the credentials
to (the SDK deprecates leaving it out); without it, whichever server the
protected resource metadata names is used.

It connects (`--mode`: the SDK's `auto` by default, which probes
`server/discover` at the 2026-07-28 protocol revision and falls back to the
`initialize` handshake; `legacy` forces the handshake), lists the tools,
calls `echo` with "hello", calls `delete_repo` with "acme/widgets", and
prints one JSON object:
    {"protocol_version", "tools": [names], "echo": {"text", "is_error"},
     "delete_repo": {"error": bool, "code", "message"} | {"error": bool, "is_error", "text"},
     "http": [{"method", "url", "status"}, ...],   # every HTTP exchange, OAuth ones too
     "token_request": {form fields, "assertion_header", "assertion_claims"},   # OAuth only
     "access_token": {"header", "claims"}}         # OAuth or --token, when the token is a JWT
`delete_repo.error` is true when the call was refused with a JSON-RPC error
(`code`, `message`: what a gateway's policy denial looks like); a tool that
ran and failed gives `is_error` true instead. Exits 1 with
`mcp_client: <reason>` on stderr when connecting or listing fails.

The OAuth flow the SDK (mcp 2.3.0, `mcp/client/auth/oauth2.py` and
`extensions/client_credentials.py`) performs, in order:
  1. POST URL without a token (the first MCP request) -> expects 401. From
     `WWW-Authenticate` it takes `resource_metadata="..."` (and `scope=`, if
     present, which then wins over everything in step 5).
  2. GET the protected resource metadata (RFC 9728), trying in order until a
     200 that parses: the `resource_metadata` URL from the header, then
     `<origin>/.well-known/oauth-protected-resource<URL path>`, then
     `<origin>/.well-known/oauth-protected-resource`. A 5xx/429 on all of them
     fails the flow. The document must have `resource` and a non-empty
     `authorization_servers`; `resource` is checked against URL: same scheme,
     host and port, and URL's path must equal `resource`'s path or lie below
     it (trailing slashes ignored), else the flow fails ("Protected resource
     ... does not match expected ..."). The first authorization server is
     used (or the one equal to `--issuer`).
  3. GET the authorization server metadata: for an issuer without a path,
     `<issuer>/.well-known/oauth-authorization-server`, then
     `<issuer>/.well-known/openid-configuration` (for an issuer with a path:
     the RFC 8414 path-inserted forms, then `<issuer>/.well-known/openid-configuration`).
     A 3xx/4xx moves to the next URL; a 5xx stops. The document must parse as
     the SDK's `OAuthMetadata`, which REQUIRES `issuer`, `authorization_endpoint`
     and `token_endpoint` (a document without `authorization_endpoint` is
     skipped as unparseable, and the flow then fails for want of metadata).
     Its `issuer` must equal the `authorization_servers` entry byte for byte
     (a root issuer with or without its trailing `/` counts as equal).
  4. With `--issuer`: stops unless the metadata's issuer is that issuer.
  5. POST `token_endpoint`, `application/x-www-form-urlencoded`, no
     Authorization header and no `client_id` field:
        grant_type=client_credentials
        client_assertion=<JWT>
        client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
        resource=<PRM `resource`>  (sent whenever PRM was found; it is the PRM's
                  `resource` when URL lies at or below it, else URL itself)
        scope=<the WWW-Authenticate scope, else PRM scopes_supported joined
               by spaces, else AS scopes_supported joined, else --scope; absent
               if none of them>
     The assertion (SDK-signed, `SignedJWTParameters`): header `alg` (+ `typ: JWT`);
     claims `iss` = `sub` = client_id, `aud` = the AS metadata's `issuer`
     string (not the token endpoint), `iat`, `exp` = iat + 300, `jti` = UUID4.
     The answer must be 200/201 JSON with `access_token` and `token_type`
     "Bearer" (any case); `expires_in`, `scope` optional.
  6. Retries the original request with `Authorization: Bearer <access_token>`
     and sends that header on every later request (no refresh token use for
     client credentials: on expiry or a later 401 it starts again at step 1).
     A 403 with `error="insufficient_scope"` re-runs 5 with the union of the
     scopes.
"""

import argparse
import asyncio
import base64
import json
import sys
from urllib.parse import parse_qsl

import httpx2
import jwt
from mcp import Client
from mcp.client.auth.extensions.client_credentials import (
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


class MemoryTokenStorage:
    """The SDK's `TokenStorage` protocol, in memory."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def load_key(path):
    """(PEM text, kid or None) from a PEM file or a private JWK file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("-----BEGIN"):
        return text, None
    jwk = json.loads(text)
    if "kty" not in jwk:
        jwk = jwk["agent"]  # openid_client.mjs keygen's private-keys.json
    key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk))
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, jwk.get("kid")


def assertion_provider(client_id, pem, kid):
    """The SDK's own signer, `SignedJWTParameters`, unless a `kid` must go into
    the header (the SDK's signer sets none): then the same claims, signed here."""
    params = SignedJWTParameters(issuer=client_id, subject=client_id, signing_key=pem, signing_algorithm="ES256")
    if kid is None:
        return params.create_assertion_provider()
    sdk_claims = params.create_assertion_provider()

    async def provider(audience):
        claims = jwt.decode(await sdk_claims(audience), options={"verify_signature": False})
        return jwt.encode(claims, pem, algorithm="ES256", headers={"kid": kid})

    return provider


def unverified(token):
    """{"header", "claims"} of a JWT, or None if it is not one."""
    try:
        return {
            "header": jwt.get_unverified_header(token),
            "claims": jwt.decode(token, options={"verify_signature": False}),
        }
    except jwt.PyJWTError:
        return None


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def run(args):
    out = {}
    exchanges = []
    token_request = {}

    async def on_request(request):
        if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            form = dict(parse_qsl(request.content.decode()))
            token_request.update(form)
            if "client_assertion" in form:
                seen = unverified(form["client_assertion"]) or {}
                token_request["assertion_header"] = seen.get("header")
                token_request["assertion_claims"] = seen.get("claims")

    async def on_response(response):
        exchanges.append(
            {"method": response.request.method, "url": str(response.request.url), "status": response.status_code}
        )

    storage = MemoryTokenStorage()
    auth = None
    headers = None
    if args.token:
        headers = {"Authorization": f"Bearer {args.token}"}
    elif not args.no_auth:
        pem, kid = load_key(args.key)
        auth = PrivateKeyJWTOAuthProvider(
            server_url=args.url,
            storage=storage,
            client_id=args.client_id,
            assertion_provider=assertion_provider(args.client_id, pem, kid),
            scope=args.scope,
            issuer=args.issuer,
        )
    http = create_mcp_http_client(headers=headers, auth=auth)
    http.event_hooks = {"request": [on_request], "response": [on_response]}

    async with http:
        transport = streamable_http_client(args.url, http_client=http)
        try:
            async with Client(transport, mode=args.mode, cache=None) as client:
                out["protocol_version"] = client.protocol_version
                tools = await client.list_tools()
                out["tools"] = [t.name for t in tools.tools]

                echo = await client.call_tool("echo", {"text": "hello"})
                out["echo"] = {"text": text_of(echo), "is_error": bool(echo.is_error)}

                try:
                    deleted = await client.call_tool("delete_repo", {"repo": "acme/widgets"})
                    out["delete_repo"] = {
                        "error": False,
                        "is_error": bool(deleted.is_error),
                        "text": text_of(deleted),
                    }
                except MCPError as e:
                    out["delete_repo"] = {"error": True, "code": e.code, "message": e.message}
        except BaseException as e:  # an ExceptionGroup from the task group, an OAuth error, ...
            out["http"] = exchanges
            print(json.dumps(out, indent=2), file=sys.stderr)
            raise SystemExit(f"mcp_client: {describe(e)}")

    out["http"] = exchanges
    if token_request:
        out["token_request"] = token_request
    access = storage.tokens.access_token if storage.tokens else args.token
    if access and unverified(access):
        out["access_token"] = unverified(access)
    print(json.dumps(out, indent=2))


def describe(e):
    """The innermost reasons of a (possibly grouped) exception, one line."""
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--key", help="the agent's private key (PEM or JWK file); needs --client-id")
    how.add_argument("--token", help="a static bearer token")
    how.add_argument("--no-auth", action="store_true")
    p.add_argument("--client-id")
    p.add_argument("--scope")
    p.add_argument("--issuer")
    p.add_argument("--mode", default="auto", help="auto (default), legacy, or a modern protocol version")
    args = p.parse_args()
    if args.key and not args.client_id:
        p.error("--key needs --client-id")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
