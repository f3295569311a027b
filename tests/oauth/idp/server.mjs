// The upstream OpenID Connect provider of the OAuth black-box tests: the real
// `oidc-provider` (npm) with its development login/consent pages, which
// accept any login name (names starting with `unverified-` get
// email_verified=false). Environment:
//   IDP_PORT            port to listen on (127.0.0.1)
//   IDP_CLIENT_SECRET   secret of the one client, `portcullis`
//   IDP_REDIRECT_URI    its redirect URI (OAUTH_ISSUER + "/callback")
// Prints "listening <issuer>" on stdout once it accepts connections.
import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'portcullis',
      client_secret: process.env.IDP_CLIENT_SECRET,
      redirect_uris: [process.env.IDP_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  // PKCE for every client, so the test proves the relying party sends it.
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
  },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        // Accounts named unverified-* report an e-mail the provider has not verified.
        return { sub: id, preferred_username: id, name: id, email: `${id}@idp.test`, email_verified: !id.startsWith('unverified-') };
      },
    };
  },
  cookies: { keys: ['portcullis-test-idp-cookie-key'] },
});
provider.proxy = false;
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
