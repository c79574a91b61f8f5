#!/usr/bin/env python3
"""Verify Mandate access tokens with PyJWT, as a resource server would.

    pyjwt_verify.py [--issuer URL] --audience AUD [--audience AUD ...] TOKEN_FILE...

The issuer defaults to $MANDATE_ISSUER. Keys come from the issuer's JWKS
(`<issuer>/.well-known/jwks.json`) through `jwt.PyJWKClient`; each token must
verify with ES256 or EdDSA, carry one of the audiences and the issuer, and have
the header `typ: at+jwt`. Prints a JSON list, one object per file:
`{"file", "header", "claims", "act_chain"}`, where `act_chain` is the `act`
claim flattened, current actor first (outer to inner). Exits 1 with
`pyjwt: FILE: reason` on the first token that does not verify.
"""

import argparse
import json
import os
import sys

import jwt


def act_chain(claims):
    chain = []
    act = claims.get("act")
    while isinstance(act, dict):
        chain.append(act.get("sub"))
        act = act.get("act")
    return chain


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--issuer", default=os.environ.get("MANDATE_ISSUER"))
    p.add_argument("--audience", action="append", required=True)
    p.add_argument("files", nargs="+", metavar="TOKEN_FILE")
    args = p.parse_args()
    if not args.issuer:
        p.error("--issuer or MANDATE_ISSUER is required")

    jwks = jwt.PyJWKClient(args.issuer + "/.well-known/jwks.json")
    out = []
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as f:
                token = f.read().strip()
            header = jwt.get_unverified_header(token)
            if header.get("typ") != "at+jwt":
                raise ValueError(f"header typ is {header.get('typ')!r}, not 'at+jwt'")
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=["ES256", "EdDSA"],
                audience=args.audience,
                issuer=args.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except Exception as e:  # any failure names the file and stops the run
            print(f"pyjwt: {path}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        out.append({"file": path, "header": header, "claims": claims, "act_chain": act_chain(claims)})
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
