// A certified OpenID Connect provider (the npm registry's oidc-provider) on loopback, with a few
// static accounts and one client: the dashboard, as tests/dashboard/test_sign_in.py signs in to it.
//
//   node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI POST_LOGOUT_REDIRECT_URI
//
// Prints "ready <issuer>" once it listens. The login form is ours (a person's name and password,
// checked against ACCOUNTS; a wrong password is refused), the rest is the library's: discovery,
// PKCE (required here), signed ID tokens, RP-initiated logout. Each account's roles and tenant are
// claims of its ID token (conformIdTokenClaims: false releases them there, not only at userinfo).
import { createServer } from "node:http";
import Provider from "oidc-provider";

const [port, clientId, clientSecret, redirectUri, postLogoutRedirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const ACCOUNTS = {
  vera: { password: "vera-pw", email: "vera.viewer@acme.example", roles: ["viewer"], tenant: "acme" },
  otto: { password: "otto-pw", email: "otto.operator@acme.example", roles: ["operator"], tenant: "acme" },
  ada: { password: "ada-pw", email: "ada.admin@acme.example", roles: ["admin"], tenant: "acme" },
  nina: { password: "nina-pw", email: "nina@globex.example", roles: ["operator"], tenant: "globex" },
  noel: { password: "noel-pw", email: "noel@acme.example", roles: [], tenant: "acme" },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [postLogoutRedirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  pkce: { required: () => true },
  claims: { openid: ["sub", "roles", "tenant"], email: ["email", "email_verified"], profile: ["name"] },
  conformIdTokenClaims: false,
  cookies: { keys: ["threadline-test-provider-cookies"] },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  async findAccount(_ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: true, name: id, roles: account.roles, tenant: account.tenant };
      },
    };
  },
});

function page(uid, error) {
  const message = error ? `<p id="login-error">${error}</p>` : "";
  return `<!doctype html><html><head><title>Test provider sign-in</title></head><body>
<h1>Sign in</h1>${message}
<form method="post" action="/interaction/${uid}/login">
  <input id="username" name="username" autofocus>
  <input id="password" name="password" type="password">
  <button id="sign-in" type="submit">Sign in</button>
</form></body></html>`;
}

async function form(request) {
  let body = "";
  for await (const chunk of request) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(request, response, uid, action) {
  const details = await provider.interactionDetails(request, response);
  if (request.method === "GET") {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    return response.end(page(uid));
  }
  if (action !== "login") {
    response.writeHead(404);
    return response.end();
  }
  const fields = await form(request);
  const name = fields.get("username") ?? "";
  const account = ACCOUNTS[name];
  if (!account || account.password !== fields.get("password")) {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    return response.end(page(uid, "Wrong name or password."));
  }
  // First-party client: consent is given with the login, for every scope asked.
  const grant = new provider.Grant({ accountId: name, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope));
  const grantId = await grant.save();
  return provider.interactionFinished(
    request,
    response,
    { login: { accountId: name }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const handle = provider.callback();
createServer((request, response) => {
  const match = /^\/interaction\/([^/]+)(?:\/([a-z]+))?$/.exec(new URL(request.url, issuer).pathname);
  if (!match) return handle(request, response);
  interaction(request, response, match[1], match[2]).catch((error) => {
    response.writeHead(400, { "content-type": "text/plain" });
    response.end(String(error));
  });
}).listen(Number(port), "127.0.0.1", () => console.log(`ready ${issuer}`));
