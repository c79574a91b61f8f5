// openid-client (npm) against a running Mandate: the interop test's foreign client.
//
//   node interop/openid_client.mjs keygen DIR
//       Makes the key pairs the test needs and writes their public halves for
//       Mandate to register: DIR/k8s-jwks.json (the "cluster" that signs the
//       Kubernetes-style service-account tokens) and DIR/agent-jwks.json (the
//       agent's private_key_jwt key). The private halves stay in
//       DIR/private-keys.json, read back by `run`.
//
//   node interop/openid_client.mjs sa-token DIR ISSUER AUDIENCE NAMESPACE SERVICEACCOUNT [SECONDS]
//       Prints one Kubernetes-style service-account token signed with the key
//       from `keygen`, valid for SECONDS (default 600): bench/token.sh's assertion.
//
//   node interop/openid_client.mjs run CONFIG.json
//       Runs discovery, the jwt-bearer grant, client_credentials with
//       private_key_jwt, two token exchanges (RFC 8693), a DPoP-bound token and
//       a DPoP-bound AuthZEN call, and prints one JSON object with what it got.
//       Exits 1 with `interop: <step>: <reason>` on stderr at the first failure.
//
// CONFIG.json (written by crates/mandate/tests/it/interop.rs):
//   {
//     "issuer": "http://127.0.0.1:PORT",
//     "keys_dir": "DIR",
//     "k8s": { "issuer": "https://k8s.test", "audience": "mandate", "namespace": "interop" },
//     "agents": { "parent": "parent-bot", "child": "child-bot", "grandchild": "grandchild-bot" },
//     "resource": { "audience": "https://api.interop.test", "scope": "read write", "child_scope": "read" },
//     "pdp": { "audience": "http://127.0.0.1:PORT/access/v1", "scope": "authzen:evaluate" }
//   }
// The parent agent is the one whose public keys are DIR/agent-jwks.json.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

import * as client from 'openid-client';
import * as jose from 'jose';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

class StepError extends Error {}

/** Runs `fn` as a named step; any failure names the step and the server's answer. */
async function step(name, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StepError) throw e;
    let why = e?.message ?? String(e);
    if (e instanceof client.ResponseBodyError) {
      why = `HTTP ${e.status} ${e.error}${e.error_description ? `: ${e.error_description}` : ''}`;
    } else if (e?.cause instanceof Response) {
      why += ` (HTTP ${e.cause.status}: ${(await e.cause.text().catch(() => '')).slice(0, 300)})`;
    } else if (e?.cause?.body) {
      why += ` (body ${JSON.stringify(e.cause.body)})`;
    } else if (e?.cause?.message) {
      why += ` (${e.cause.message})`;
    }
    throw new StepError(`${name}: ${why}`);
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function keygen(dir) {
  const pub = {};
  const priv = {};
  for (const name of ['k8s', 'agent']) {
    const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
    const pubJwk = await jose.exportJWK(publicKey);
    const kid = await jose.calculateJwkThumbprint(pubJwk);
    pub[name] = { ...pubJwk, kid, alg: 'ES256', use: 'sig' };
    priv[name] = { ...(await jose.exportJWK(privateKey)), kid, alg: 'ES256' };
  }
  await writeFile(join(dir, 'k8s-jwks.json'), JSON.stringify({ keys: [pub.k8s] }));
  await writeFile(join(dir, 'agent-jwks.json'), JSON.stringify({ keys: [pub.agent] }));
  await writeFile(join(dir, 'private-keys.json'), JSON.stringify(priv), { mode: 0o600 });
  console.log(JSON.stringify({ k8s_kid: pub.k8s.kid, agent_kid: pub.agent.kid }));
}

/** A Kubernetes projected service-account token, as the kubelet would mount it. */
async function serviceAccountToken(cfg, k8sKey, serviceAccount, lifetime = 600) {
  const now = Math.floor(Date.now() / 1000);
  const ns = cfg.k8s.namespace;
  return new jose.SignJWT({
    'kubernetes.io': {
      namespace: ns,
      pod: { name: `${serviceAccount}-7d9f8b6c5-x2x4q`, uid: randomUUID() },
      serviceaccount: { name: serviceAccount, uid: randomUUID() },
    },
  })
    .setProtectedHeader({ alg: 'ES256', kid: k8sKey.kid })
    .setIssuer(cfg.k8s.issuer)
    .setSubject(`system:serviceaccount:${ns}:${serviceAccount}`)
    .setAudience([cfg.k8s.audience])
    .setIssuedAt(now - 5)
    .setNotBefore(now - 5)
    .setExpirationTime(now + lifetime)
    .sign(k8sKey.key);
}

/** What the test asserts about one token response. */
function summary(res) {
  const token = res.access_token;
  return {
    access_token: token,
    token_type: res.token_type,
    issued_token_type: res.issued_token_type,
    expires_in: res.expires_in,
    scope: res.scope,
    header: jose.decodeProtectedHeader(token),
    claims: jose.decodeJwt(token),
  };
}

async function saToken(dir, issuer, audience, namespace, serviceAccount, seconds) {
  const privs = JSON.parse(await readFile(join(dir, 'private-keys.json'), 'utf8'));
  const k8sKey = { key: await jose.importJWK(privs.k8s, 'ES256'), kid: privs.k8s.kid };
  const cfg = { k8s: { issuer, audience, namespace } };
  console.log(await serviceAccountToken(cfg, k8sKey, serviceAccount, Number(seconds ?? 600)));
}

async function run(configPath) {
  const cfg = JSON.parse(await readFile(configPath, 'utf8'));
  const privs = JSON.parse(await readFile(join(cfg.keys_dir, 'private-keys.json'), 'utf8'));
  const k8sKey = { key: await jose.importJWK(privs.k8s, 'ES256'), kid: privs.k8s.kid };
  const agentKey = { key: await jose.importJWK(privs.agent, 'ES256'), kid: privs.agent.kid };
  const { parent, child, grandchild } = cfg.agents;
  const out = {};

  // Every token-endpoint call the client makes, to show the DPoP nonce retry.
  const calls = [];
  const recordingFetch = async (url, options) => {
    const res = await fetch(url, options);
    if (String(url).endsWith('/oauth2/token')) {
      const body = await res.clone().json().catch(() => null);
      calls.push({
        status: res.status,
        error: body?.error,
        dpop_proof: new Headers(options?.headers).has('dpop'),
        dpop_nonce: res.headers.has('dpop-nonce'),
      });
    }
    return res;
  };
  const insecure = (c) => {
    client.allowInsecureRequests(c);
    c[client.customFetch] = recordingFetch;
    return c;
  };

  // 1. Discovery, both documents; the issuer must be the URL byte for byte
  // (openid-client checks it).
  const issuer = new URL(cfg.issuer);
  const publicClient = await step('discovery (openid-configuration)', () =>
    client.discovery(issuer, parent, undefined, client.None(), {
      execute: [client.allowInsecureRequests],
    }),
  );
  insecure(publicClient);
  const rfc8414 = await step('discovery (oauth-authorization-server)', () =>
    client.discovery(issuer, parent, undefined, client.None(), {
      algorithm: 'oauth2',
      execute: [client.allowInsecureRequests],
    }),
  );
  const meta = publicClient.serverMetadata();
  out.discovery = {
    issuer: meta.issuer,
    oauth2_issuer: rfc8414.serverMetadata().issuer,
    token_endpoint: meta.token_endpoint,
    jwks_uri: meta.jwks_uri,
    grant_types_supported: meta.grant_types_supported,
    token_endpoint_auth_methods_supported: meta.token_endpoint_auth_methods_supported,
    dpop_signing_alg_values_supported: meta.dpop_signing_alg_values_supported,
  };
  const configFor = (clientId, auth) => insecure(new client.Configuration(meta, clientId, undefined, auth));

  // 2. jwt-bearer: the parent's service-account token, no client authentication.
  const parentSa = await serviceAccountToken(cfg, k8sKey, parent);
  const parentRes = await step('jwt-bearer grant', () =>
    client.genericGrantRequest(publicClient, JWT_BEARER, {
      assertion: parentSa,
      resource: cfg.resource.audience,
      scope: cfg.resource.scope,
    }),
  );
  out.jwt_bearer = summary(parentRes);

  // 3. client_credentials authenticated with private_key_jwt.
  const keyClient = configFor(parent, client.PrivateKeyJwt(agentKey));
  const ccRes = await step('client_credentials with private_key_jwt', () =>
    client.clientCredentialsGrant(keyClient, {
      resource: cfg.resource.audience,
      scope: cfg.resource.scope,
    }),
  );
  out.client_credentials = summary(ccRes);

  // 4. Token exchange, two hops: parent → child with the child's workload JWT
  // as actor_token, then child → grandchild with the grandchild's own Mandate
  // token as actor_token.
  const childSa = await serviceAccountToken(cfg, k8sKey, child);
  const hop1 = await step('token exchange parent -> child', () =>
    client.genericGrantRequest(configFor(child, client.None()), TOKEN_EXCHANGE, {
      subject_token: parentRes.access_token,
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: childSa,
      actor_token_type: JWT_TYPE,
      resource: cfg.resource.audience,
      scope: cfg.resource.child_scope,
    }),
  );
  out.exchange = summary(hop1);
  const grandchildClient = configFor(grandchild, client.None());
  const grandchildOwn = await step('jwt-bearer grant (grandchild)', async () =>
    client.genericGrantRequest(grandchildClient, JWT_BEARER, {
      assertion: await serviceAccountToken(cfg, k8sKey, grandchild),
      resource: cfg.resource.audience,
      scope: cfg.resource.child_scope,
    }),
  );
  const hop2 = await step('token exchange child -> grandchild', () =>
    client.genericGrantRequest(grandchildClient, TOKEN_EXCHANGE, {
      subject_token: hop1.access_token,
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: grandchildOwn.access_token,
      actor_token_type: ACCESS_TOKEN_TYPE,
      resource: cfg.resource.audience,
      scope: cfg.resource.child_scope,
    }),
  );
  out.exchange2 = summary(hop2);

  // 5. DPoP: a token bound to a key pair (the server asks for a nonce first;
  // openid-client retries with it), then a DPoP-bound call to AuthZEN.
  const dpopKeys = await client.randomDPoPKeyPair('ES256');
  const dpopJkt = await jose.calculateJwkThumbprint(await jose.exportJWK(dpopKeys.publicKey));
  const dpopClient = configFor(parent, client.PrivateKeyJwt(agentKey));
  const DPoP = client.getDPoPHandle(dpopClient, dpopKeys);
  const before = calls.length;
  const dpopRes = await step('DPoP-bound client_credentials', () =>
    client.clientCredentialsGrant(dpopClient, { resource: cfg.pdp.audience, scope: cfg.pdp.scope }, { DPoP }),
  );
  out.dpop = { ...summary(dpopRes), key_thumbprint: dpopJkt, token_endpoint_calls: calls.slice(before) };

  const evaluation = {
    subject: { type: 'agent', id: child },
    action: { name: 'token:issue' },
    resource: {
      type: 'resource',
      id: 'api',
      properties: { kind: 'http', owner: 'ann@example.com', sensitivity: 'internal' },
    },
    context: { env: 'prod', attestation: { provider: 'k8s', claims: {} } },
  };
  const authzenUrl = new URL(`${cfg.pdp.audience}/evaluation`);
  const res = await step('DPoP-bound AuthZEN evaluation', () =>
    client.fetchProtectedResource(
      dpopClient,
      dpopRes.access_token,
      authzenUrl,
      'POST',
      JSON.stringify(evaluation),
      new Headers({ 'content-type': 'application/json' }),
      { DPoP },
    ),
  );
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  out.authzen = { status: res.status, body };
  // The same token without its proof must not pass: that is what binding means.
  const stolen = await step('AuthZEN call without the DPoP proof', () =>
    fetch(authzenUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${dpopRes.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify(evaluation),
    }),
  );
  out.authzen_without_proof = { status: stolen.status };

  console.log(JSON.stringify(out, null, 2));
}

const [cmd, arg, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'keygen' && arg) await keygen(arg);
  else if (cmd === 'sa-token' && rest.length >= 4) await saToken(arg, ...rest);
  else if (cmd === 'run' && arg) await run(arg);
  else {
    console.error('usage: node openid_client.mjs keygen DIR | sa-token DIR ISSUER AUDIENCE NAMESPACE SA [SECONDS] | run CONFIG.json');
    process.exit(64);
  }
} catch (e) {
  console.error(`interop: ${e instanceof StepError ? e.message : e?.stack ?? e}`);
  process.exit(1);
}
