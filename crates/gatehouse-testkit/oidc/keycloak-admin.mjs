// Keycloak's admin REST API for one realm, as its documentation describes it (Admin REST API, "Users",
// "Role Mapper", "Roles", "Clients"), for Gatehouse's tests: Keycloak itself cannot run here. It answers
// under /admin/realms/<realm>/ beside the realm's OIDC endpoints (the real oidc-provider in provider.mjs), and
// accepts as bearer tokens the access tokens that provider issued through the client-credentials grant, as a
// service account's are.
//
// Settings (the `keycloak_admin` object of the provider's settings file):
//   realm               the realm's name
//   users_file          a JSON array of UserRepresentations (id, username, email, firstName, lastName, enabled,
//                       emailVerified, createdTimestamp, attributes: {name: [values]}), each with the roles it
//                       holds directly: realmRoles [names] and clientRoles {clientId: [names]}; read again
//                       whenever the file changes, so a test edits users by rewriting it
//   service_accounts    {clientId: [realm-management roles]}: a token of a client not listed, or without
//                       view-users, is answered 403 as Keycloak does
//   user_profile        a list of attribute names: when given, only those attributes are returned (Keycloak 24+
//                       hides attributes its user profile does not declare); absent: all of them
//   clients             [{id, clientId}] the realm's clients, for client-role lookups
//   requests_file       when given, one line per admin request is appended ("GET /users?…" and the status;
//                       provider.mjs adds a line per token request)
//
// What is modelled, as Keycloak does it:
//   GET /users          email, username, firstName, lastName, search (substring of any of them), enabled,
//                       emailVerified, q (attribute "name:value" pairs, exact), exact (true only when the value
//                       reads "true" ignoring case, as Java's Boolean.valueOf: `exact=1` is a substring match),
//                       first (default 0), max (default 100), briefRepresentation (omits attributes); results
//                       ordered by username; emails and usernames compared in lower case
//   GET /users/count    the same filters, a bare number
//   GET /users/{id}     one user, 404 when unknown
//   GET /users/{id}/role-mappings/realm               the realm roles held directly
//   GET /users/{id}/role-mappings/clients/{uuid}      the client's roles held directly
//   GET /roles/{name}                                  a realm role, 404 when no user or mapping names it
//   GET /roles/{name}/users                            users holding it directly (first, max)
//   GET /clients?clientId=…                            the client with that id (an array)
//   GET /clients/{uuid}/roles/{name}/users             users holding that client role directly (first, max)
import { appendFileSync, readFileSync, statSync } from 'node:fs';

const DEFAULT_MAX = 100;

export function keycloakAdmin(settings, provider) {
  let cache = { key: null, users: [] };

  function users() {
    const stat = statSync(settings.users_file);
    const key = `${stat.mtimeMs}:${stat.size}`;
    if (cache.key !== key) {
      const list = JSON.parse(readFileSync(settings.users_file, 'utf8'));
      list.sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
      cache = { key, users: list };
    }
    return cache.users;
  }

  function representation(user, brief) {
    const { realmRoles, clientRoles, ...shown } = user;
    if (brief) {
      delete shown.attributes;
      return shown;
    }
    if (settings.user_profile && shown.attributes) {
      shown.attributes = Object.fromEntries(
        Object.entries(shown.attributes).filter(([name]) => settings.user_profile.includes(name)),
      );
    }
    return shown;
  }

  // Java's Boolean.valueOf: true only for "true" in any case.
  const javaBoolean = (text) => typeof text === 'string' && text.toLowerCase() === 'true';

  function matches(user, params) {
    const exact = javaBoolean(params.get('exact'));
    const field = (name, value) => {
      const have = (user[name] ?? '').toLowerCase();
      const want = value.toLowerCase();
      return exact ? have === want : have.includes(want);
    };
    for (const name of ['email', 'username', 'firstName', 'lastName']) {
      const value = params.get(name);
      if (value !== null && !field(name, value)) return false;
    }
    const search = params.get('search');
    if (search !== null) {
      const want = search.replace(/^\*|\*$/g, '').toLowerCase();
      const any = ['email', 'username', 'firstName', 'lastName'].some((n) => (user[n] ?? '').toLowerCase().includes(want));
      if (!any) return false;
    }
    for (const name of ['enabled', 'emailVerified']) {
      const value = params.get(name);
      if (value !== null && Boolean(user[name]) !== javaBoolean(value)) return false;
    }
    const q = params.get('q');
    if (q) {
      for (const pair of q.split(' ').filter(Boolean)) {
        const at = pair.indexOf(':');
        const [name, value] = [pair.slice(0, at), pair.slice(at + 1)];
        if (!(user.attributes?.[name] ?? []).includes(value)) return false;
      }
    }
    return true;
  }

  function page(list, params) {
    const first = Math.max(0, parseInt(params.get('first') ?? '0', 10) || 0);
    const max = params.has('max') ? parseInt(params.get('max'), 10) : DEFAULT_MAX;
    return list.slice(first, max < 0 ? undefined : first + max);
  }

  function clientByUuid(uuid) {
    return (settings.clients ?? []).find((c) => c.id === uuid);
  }

  // What the service account behind `token` may do: null (401) or its roles.
  async function serviceAccountRoles(req) {
    const header = req.headers.authorization ?? '';
    if (!header.toLowerCase().startsWith('bearer ')) return null;
    const token = await provider.ClientCredentials.find(header.slice(7).trim());
    if (!token) return null;
    return settings.service_accounts?.[token.clientId] ?? [];
  }

  function send(res, status, body) {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  }

  async function answer(req, res, path, params) {
    if (req.method !== 'GET') return send(res, 405, { error: 'HTTP 405 Method Not Allowed' });
    const roles = await serviceAccountRoles(req);
    if (roles === null) return send(res, 401, { error: 'HTTP 401 Unauthorized' });
    if (!roles.includes('view-users')) return send(res, 403, { error: 'HTTP 403 Forbidden' });
    const all = users();
    const brief = javaBoolean(params.get('briefRepresentation'));
    let m;
    if (path === '/users') {
      return send(res, 200, page(all.filter((u) => matches(u, params)), params).map((u) => representation(u, brief)));
    }
    if (path === '/users/count') return send(res, 200, all.filter((u) => matches(u, params)).length);
    if ((m = path.match(/^\/users\/([^/]+)$/))) {
      const user = all.find((u) => u.id === decodeURIComponent(m[1]));
      return user ? send(res, 200, representation(user, false)) : send(res, 404, { error: 'User not found' });
    }
    if ((m = path.match(/^\/users\/([^/]+)\/role-mappings\/realm$/))) {
      const user = all.find((u) => u.id === decodeURIComponent(m[1]));
      if (!user) return send(res, 404, { error: 'User not found' });
      return send(res, 200, (user.realmRoles ?? []).map((name) => ({ id: `role-${name}`, name, composite: false, clientRole: false })));
    }
    if ((m = path.match(/^\/users\/([^/]+)\/role-mappings\/clients\/([^/]+)$/))) {
      const user = all.find((u) => u.id === decodeURIComponent(m[1]));
      const client = clientByUuid(decodeURIComponent(m[2]));
      if (!user) return send(res, 404, { error: 'User not found' });
      if (!client) return send(res, 404, { error: 'Could not find client' });
      const names = user.clientRoles?.[client.clientId] ?? [];
      return send(res, 200, names.map((name) => ({ id: `role-${client.clientId}-${name}`, name, composite: false, clientRole: true })));
    }
    if ((m = path.match(/^\/roles\/([^/]+)(\/users)?$/))) {
      const name = decodeURIComponent(m[1]);
      const holders = all.filter((u) => (u.realmRoles ?? []).includes(name));
      const known = holders.length > 0 || (settings.realm_roles ?? []).includes(name);
      if (!known) return send(res, 404, { error: 'Could not find role' });
      if (!m[2]) return send(res, 200, { id: `role-${name}`, name, composite: false, clientRole: false });
      return send(res, 200, page(holders, params).map((u) => representation(u, true)));
    }
    if (path === '/clients') {
      const id = params.get('clientId');
      return send(res, 200, (settings.clients ?? []).filter((c) => id === null || c.clientId === id));
    }
    if ((m = path.match(/^\/clients\/([^/]+)\/roles\/([^/]+)\/users$/))) {
      const client = clientByUuid(decodeURIComponent(m[1]));
      if (!client) return send(res, 404, { error: 'Could not find client' });
      const name = decodeURIComponent(m[2]);
      const holders = all.filter((u) => (u.clientRoles?.[client.clientId] ?? []).includes(name));
      return send(res, 200, page(holders, params).map((u) => representation(u, true)));
    }
    return send(res, 404, { error: 'HTTP 404 Not Found' });
  }

  const prefix = `/admin/realms/${encodeURIComponent(settings.realm)}`;
  return {
    handles: (url) => url === prefix || url.startsWith(prefix + '/') || url.startsWith(prefix + '?'),
    async handle(req, res) {
      const url = new URL(req.url, 'http://localhost');
      const path = url.pathname.slice(prefix.length) || '/';
      try {
        await answer(req, res, path, url.searchParams);
      } catch (err) {
        console.log(`admin API error: ${err.stack}`);
        send(res, 500, { error: String(err) });
      }
      if (settings.requests_file) {
        appendFileSync(settings.requests_file, `${req.method} ${path}${url.search} ${res.statusCode}\n`);
      }
    },
  };
}
