// Serve a certified OpenID Connect provider for photosite's end-to-end test.
//
// Listens on a free port of 127.0.0.1 and prints "issuer <url>" once ready.
// Sign-in takes any login and password (devInteractions). The client comes
// from the environment: CLIENT_ID, CLIENT_SECRET, REDIRECT_URI and
// SIGN_OUT_URI. After POST /test/accounts/<login>/disable the provider
// demands a new sign-in from that account, standing in for a user disabled
// at the provider: a silent re-check (prompt=none) answers login_required.
import http from "node:http";

import Provider, { interactionPolicy } from "oidc-provider";

const { CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SIGN_OUT_URI } = process.env;
const disabledAccounts = new Set();

function findAccount(ctx, accountId) {
  return {
    accountId,
    async claims() {
      return {
        sub: accountId,
        email: `${accountId}@example.org`,
        email_verified: true,
        preferred_username: accountId,
      };
    },
  };
}

function interactionsPolicy() {
  const policy = interactionPolicy.base();
  const accountDisabled = new interactionPolicy.Check(
    "account_disabled",
    "The account has been disabled",
    (ctx) => disabledAccounts.has(ctx.oidc.session.accountId),
  );
  policy.get("login").checks.add(accountDisabled);
  return policy;
}

function configuration() {
  return {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [REDIRECT_URI],
        post_logout_redirect_uris: [SIGN_OUT_URI],
      },
    ],
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["preferred_username"],
    },
    cookies: { keys: ["photosite-test-only"] },
    features: { devInteractions: { enabled: true } },
    findAccount,
    interactions: { policy: interactionsPolicy() },
    // Refuse any authorization request without PKCE, so the test proves
    // the site sends it.
    pkce: { required: () => true },
  };
}

function disableAccount(request, response) {
  const match = request.url.match(/^\/test\/accounts\/([^/]+)\/disable$/);
  if (request.method !== "POST" || !match) {
    return false;
  }
  disabledAccounts.add(decodeURIComponent(match[1]));
  response.writeHead(204).end();
  return true;
}

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration());
  provider.on("server_error", (ctx, error) => console.error(error));
  const handle = provider.callback();
  server.on("request", (request, response) => {
    if (!disableAccount(request, response)) {
      handle(request, response);
    }
  });
  console.log(`issuer ${issuer}`);
});
