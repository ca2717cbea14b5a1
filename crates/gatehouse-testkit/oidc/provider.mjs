// The OpenID provider of Gatehouse's tests: npm oidc-provider on loopback, configured by the JSON file named on
// the command line (written by gatehouse-testkit's `oidc` module):
//   issuer          the issuer URL; a path (Keycloak's /realms/<realm>) mounts the provider there
//   port            the loopback port to listen on
//   keycloak_routes endpoint paths as Keycloak serves them (/protocol/openid-connect/...)
//   clients         oidc-provider client metadata
//   accounts_file   a JSON file {account id: claims}, read again at every sign-in so a test can change claims
//   claims          scope -> claim names released for it
//   pkce_required   whether authorization requests must carry a PKCE challenge
//   kid             the id of the RSA signing key generated at start (a restart with another id rotates it)
//   jwt_resource    a resource indicator (RFC 8707) whose access tokens are JWTs signed with the provider's key
//                   (scope `mail`), as Keycloak issues them; other access tokens are opaque
// Access tokens of clients whose id starts with `short-` live two seconds (to show what an expired one does).
//   keycloak_admin  when given, Keycloak's admin REST API for the realm (keycloak-admin.mjs says what it holds)
//   tamper_file     a JSON file {"mode": …}; while it exists, the ID token of every token response is spoiled
//                   that way (signature, alg-none, hs256, iss, aud, expired, nonce), so a test can show that
//                   the relying party refuses each forgery it receives from the real token endpoint
// The sign-in form is oidc-provider's development interaction: any account id with any password.
import http from 'node:http';
import { createHmac, createSign, generateKeyPairSync } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';
import { keycloakAdmin } from './keycloak-admin.mjs';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = new URL(settings.issuer);
const mount = issuer.pathname.replace(/\/$/, '');

const keycloakRoutes = {
  authorization: '/protocol/openid-connect/auth',
  token: '/protocol/openid-connect/token',
  userinfo: '/protocol/openid-connect/userinfo',
  jwks: '/protocol/openid-connect/certs',
  end_session: '/protocol/openid-connect/logout',
  introspection: '/protocol/openid-connect/token/introspect',
  revocation: '/protocol/openid-connect/revoke',
};

function accounts() {
  return JSON.parse(readFileSync(settings.accounts_file, 'utf8'));
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: settings.kid, alg: 'RS256', use: 'sig' };

const provider = new Provider(settings.issuer, {
  jwks: { keys: [signingKey] },
  clients: settings.clients,
  routes: settings.keycloak_routes ? keycloakRoutes : undefined,
  claims: settings.claims,
  features: {
    devInteractions: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (!settings.jwt_resource || resourceIndicator !== settings.jwt_resource) {
          throw new errors.InvalidTarget();
        }
        return { scope: 'mail', audience: resourceIndicator, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  pkce: { required: () => settings.pkce_required },
  ttl: { AccessToken: (ctx, token, client) => (client.clientId.startsWith('short-') ? 2 : 3600) },
  cookies: { keys: ['gatehouse-test-cookie-key'] },
  // Gatehouse listens on loopback here, which oidc-provider's SSRF guard refuses to call (back-channel logout):
  // its outgoing requests go without that guard in these tests.
  fetch(url, options) {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  async findAccount(ctx, id) {
    const claims = accounts()[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { ...claims, sub: claims.sub ?? id }; } };
  },
});

// Back-channel logouts are told in the log, so a test can show why one did not arrive.
provider.on('backchannel.success', (ctx, client, accountId, sid) => console.log(`backchannel logout sent to ${client.clientId} for ${accountId} (sid ${sid})`));
provider.on('backchannel.error', (ctx, err, client) => console.log(`backchannel logout to ${client.clientId} failed: ${err} ${err.cause ?? ""}`));
provider.on('end_session.success', () => console.log('end_session success'));

function tamperMode() {
  try {
    return JSON.parse(readFileSync(settings.tamper_file, 'utf8')).mode;
  } catch {
    return null;
  }
}

const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

function resign(header, payload) {
  const input = `${encode(header)}.${encode(payload)}`;
  return `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
}

// The ID token spoiled as `mode` says (see tamper_file above).
function tamper(token, mode) {
  const [head, body, signature] = token.split('.');
  const header = decode(head);
  const payload = decode(body);
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'signature':
      return `${head}.${body}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    case 'alg-none':
      return `${encode({ alg: 'none', typ: 'JWT' })}.${body}.`;
    case 'hs256': {
      const client = settings.clients.find((c) => c.client_id === payload.aud);
      const input = `${encode({ alg: 'HS256', typ: 'JWT', kid: header.kid })}.${body}`;
      return `${input}.${createHmac('sha256', client.client_secret).update(input).digest('base64url')}`;
    }
    case 'iss':
      return resign(header, { ...payload, iss: 'https://impostor.example' });
    case 'aud':
      return resign(header, { ...payload, aud: 'someone-else' });
    case 'expired':
      return resign(header, { ...payload, exp: now - 3600, iat: now - 7200 });
    case 'nonce':
      return resign(header, { ...payload, nonce: 'not-this-sign-in' });
    default:
      throw new Error(`unknown tamper mode ${mode}`);
  }
}

// While tampering: the token endpoint's answer is taken before it is sent and its ID token spoiled.
function tamperTokenResponse(res, mode) {
  const setHeader = res.setHeader.bind(res);
  res.setHeader = (name, value) => (name.toLowerCase() === 'content-length' ? res : setHeader(name, value));
  const end = res.end.bind(res);
  res.end = (chunk, ...rest) => {
    let text = chunk ? chunk.toString() : '';
    try {
      const json = JSON.parse(text);
      if (json.id_token) {
        json.id_token = tamper(json.id_token, mode);
        text = JSON.stringify(json);
        console.log(`tampered an ID token (${mode})`);
      }
    } catch (err) {
      console.log(`not tampered: ${err}`);
    }
    setHeader('content-length', Buffer.byteLength(text));
    return end(text, ...rest.filter((arg) => typeof arg === 'function'));
  };
}

const tokenPath = settings.keycloak_routes ? keycloakRoutes.token : '/token';
const callback = provider.callback();
const admin = settings.keycloak_admin ? keycloakAdmin(settings.keycloak_admin, provider) : null;
const server = http.createServer((req, res) => {
  if (admin && admin.handles(req.url)) {
    admin.handle(req, res);
    return;
  }
  if (mount && !(req.url === mount || req.url.startsWith(mount + '/') || req.url.startsWith(mount + '?'))) {
    res.statusCode = 404;
    res.end('not under ' + mount);
    return;
  }
  req.originalUrl = req.url;
  req.url = req.url.slice(mount.length) || '/';
  const tokenRequest = req.method === 'POST' && req.url.split('?')[0] === tokenPath;
  if (tokenRequest && settings.keycloak_admin?.requests_file) {
    res.on('finish', () => appendFileSync(settings.keycloak_admin.requests_file, `POST token ${res.statusCode}\n`));
  }
  const mode = tokenRequest ? tamperMode() : null;
  if (mode) tamperTokenResponse(res, mode);
  callback(req, res);
});
server.listen(settings.port, '127.0.0.1', () => console.log('listening on ' + settings.issuer));
