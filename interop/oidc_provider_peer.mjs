// node oidc-provider as the token-endpoint benchmark's peer (bench/token.sh).
//
//   node interop/oidc_provider_peer.mjs PORT [WORKERS]
//
// Serves an authorization server on http://127.0.0.1:PORT with one client,
// `bench` / secret `bench-secret` (client_secret_basic), allowed the
// client_credentials grant for the resource `https://api.bench.test` with
// scopes `read write`. Access tokens are JWTs signed with ES256 and live
// 5 minutes, as Mandate's: the comparable work per request is authenticating
// the client, checking the resource and scope, and signing a JWT.
// Storage is oidc-provider's default in-memory adapter (JWT access tokens are
// not stored), and there is no policy engine and no audit log.
// WORKERS > 1 runs that many processes with node:cluster, sharing the port
// and the signing key. Prints `listening on URL` when ready.

import cluster from 'node:cluster';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 18421);
const workers = Number(process.argv[3] ?? 1);
const RESOURCE = 'https://api.bench.test';

if (cluster.isPrimary && workers > 1) {
  const jwk = await signingKey();
  for (let i = 0; i < workers; i++) cluster.fork({ PEER_SIGNING_JWK: JSON.stringify(jwk) });
  let ready = 0;
  cluster.on('message', (_w, msg) => {
    if (msg === 'ready' && ++ready === workers) console.log(`listening on http://127.0.0.1:${port} (${workers} workers)`);
  });
  cluster.on('exit', (_w, code) => process.exit(code ?? 1));
} else {
  const jwk = process.env.PEER_SIGNING_JWK ? JSON.parse(process.env.PEER_SIGNING_JWK) : await signingKey();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: 'bench',
        client_secret: 'bench-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
        scope: 'read write',
      },
    ],
    jwks: { keys: [jwk] },
    scopes: ['read', 'write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Error('unknown resource');
          return {
            scope: 'read write',
            audience: RESOURCE,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  provider.listen(port, '127.0.0.1', () => {
    if (cluster.isWorker) process.send('ready');
    else console.log(`listening on http://127.0.0.1:${port}`);
  });
}

async function signingKey() {
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid: await jose.calculateJwkThumbprint(jwk), alg: 'ES256', use: 'sig' };
}
