// The OpenID provider the tests run: oidc-provider on 127.0.0.1, configured from a JSON file
// the Python fixture writes (clients, accounts, lifetimes, and optionally `tls`: PEM files of a
// serving certificate and key, for an https issuer as kube-apiserver requires). Prints one line
// `READY {"issuer": ...}` on stdout once it listens; everything else goes to stderr.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const lifetime = config.lifetime ?? 1800;
const scheme = config.tls ? 'https' : 'http';

// Opt-in (`accessTokenAudience` in the config): access tokens are JWTs for that audience, as
// API servers accept them, instead of oidc-provider's opaque ones. Every token request gets the
// one resource server, so a client need not send `resource` (kubelogin decodes the access token
// it prints as a JWT, and cannot use an opaque one).
function jwtAccessTokens(audience) {
  return {
    enabled: true,
    defaultResource: () => audience,
    useGrantedResource: () => true,
    getResourceServerInfo: (ctx, resource) => {
      if (resource !== audience) throw new errors.InvalidTarget();
      return { audience, scope: 'openid email groups', accessTokenFormat: 'jwt',
               accessTokenTTL: lifetime, jwt: { sign: { alg: 'RS256' } } };
    },
  };
}

const provider = new Provider(`${scheme}://127.0.0.1:${config.port}`, {
  clients: config.clients,
  jwks: config.jwks,
  findAccount: (ctx, sub) => {
    const account = config.accounts[sub];
    if (!account) return undefined;
    return { accountId: sub, claims: () => ({ sub, ...account }) };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'groups'],
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    ...(config.accessTokenAudience && { resourceIndicators: jwtAccessTokens(config.accessTokenAudience) }),
  },
  ttl: {
    AccessToken: lifetime,
    IdToken: lifetime,
    ClientCredentials: lifetime,
    DeviceCode: config.deviceCodeLifetime ?? 600,
    RefreshToken: 86400,
  },
  // Refresh tokens whenever offline_access was granted, and rotated on every use, so the
  // tests see what the strictest providers do.
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('offline_access'),
  rotateRefreshToken: () => true,
  loadExistingGrant: async (ctx) => {
    // Consent once per account and client, as most providers remember it.
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
  enabledJWA: {
    clientAuthSigningAlgValues: ['EdDSA', 'ES256', 'RS256'],
    idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
// The tests count requests (discovery, JWKS, token) to see what cred-helper keeps between runs.
provider.use(async (ctx, next) => {
  console.error(`REQUEST ${ctx.method} ${ctx.path}`);
  await next();
});
// The tests count token requests that succeeded, by grant type.
provider.on('grant.success', (ctx) => console.error(`GRANT ${ctx.oidc.params.grant_type}`));

const ready = () => process.stdout.write(`READY ${JSON.stringify({ issuer: provider.issuer })}\n`);
// Served by node's own https server: oidc-provider then sees a secure request (its cookies and
// the issuer's scheme agree) with no proxy in front.
const server = config.tls
  ? createServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) },
    provider.callback()).listen(config.port, '127.0.0.1', ready)
  : provider.listen(config.port, '127.0.0.1', ready);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
