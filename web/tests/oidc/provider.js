// An independent OpenID Connect provider for the web's city-account tests:
// panva's certified `oidc-provider`, with its development login and consent
// pages. Listens on 127.0.0.1, port 0 (or OIDC_PORT), and prints its issuer
// URL as the first line of stdout.
//
// The one client comes from the environment (or argv, in this order):
//   OIDC_CLIENT_ID       [argv 2]  default "checkin"
//   OIDC_CLIENT_SECRET   [argv 3]  default "checkin-secret"
//   OIDC_REDIRECT_URI    [argv 4]  required: {public_base_url}/auth/callback
//
// Accounts (any password): the login is the account.
//   visitor     +79161234567, verified
//   unverified  +79161234568, not verified
//   foreign     +442071234567, verified (not a Russian number)
//   nophone     no phone at all
import http from 'node:http';
import Provider from 'oidc-provider';

const clientId = process.env.OIDC_CLIENT_ID || process.argv[2] || 'checkin';
const clientSecret = process.env.OIDC_CLIENT_SECRET || process.argv[3] || 'checkin-secret';
const redirectUri = process.env.OIDC_REDIRECT_URI || process.argv[4];
if (!redirectUri) {
  console.error('provider.js: OIDC_REDIRECT_URI (or argv 4) is required');
  process.exit(2);
}

const ACCOUNTS = {
  visitor: { phone_number: '+79161234567', phone_number_verified: true },
  unverified: { phone_number: '+79161234568', phone_number_verified: false },
  foreign: { phone_number: '+442071234567', phone_number_verified: true },
  nophone: {},
};

const server = http.createServer();
server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    scopes: ['openid', 'phone'],
    claims: {
      openid: ['sub'],
      phone: ['phone_number', 'phone_number_verified'],
    },
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    // Throw-away cookie keys: the provider lives as long as one test.
    cookies: { keys: [Math.random().toString(36).slice(2)] },
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, ...account };
        },
      };
    },
  });
  // The development keys and pages warn on stderr: expected in a test.
  server.on('request', provider.callback());
  console.log(issuer);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
