#!/usr/bin/env python3
"""The browser's and the mail app's part of bench/run's access-token scenario, against the test OpenID provider.

    bench/oauth2_token.py GATEHOUSE_URL PROVIDER_URL ACCOUNT

Signs ACCOUNT in at the provider through Gatehouse's `/oidc/sign-in/corp` (which creates its mailbox and binds
it to the account), then gets an access token for the public client `mail-app` with the code flow and PKCE, as
a mail client would, and prints it. The provider's login form is its development one (any password).
"""

import base64
import hashlib
import html
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

GATEHOUSE, PROVIDER, ACCOUNT = sys.argv[1:4]
APP_REDIRECT = "http://127.0.0.1:9/cb"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), NoRedirect)


def fetch(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with OPENER.open(urllib.request.Request(url, data=data), timeout=30) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as answer:
        return answer.code, answer.headers, answer.read().decode()


def through_provider(url):
    """Follows the provider's redirects, login form and consent form from `url`; returns where it sends the
    browser next (not visited)."""
    for _ in range(20):
        if not url.startswith(PROVIDER):
            return url
        status, headers, body = fetch(url)
        if headers.get("Location"):
            url = urllib.parse.urljoin(url, headers["Location"])
            continue
        found = re.search(r'<form[^>]*action="([^"]+)"', body)
        if status != 200 or not found:
            sys.exit(f"the provider answered {status} without a form: {body[:500]}")
        action = urllib.parse.urljoin(url, html.unescape(found.group(1)))
        if 'value="login"' in body:
            form = {"prompt": "login", "login": ACCOUNT, "password": "any"}
        else:
            form = {"prompt": "consent"}
        status, headers, body = fetch(action, form)
        if not headers.get("Location"):
            sys.exit(f"the provider did not redirect ({status}): {body[:500]}")
        url = urllib.parse.urljoin(action, headers["Location"])
    sys.exit("the provider kept redirecting")


status, headers, body = fetch(f"{GATEHOUSE}/oidc/sign-in/corp")
if status != 303:
    sys.exit(f"the sign-in did not start ({status}): {body[:500]}")
callback = through_provider(headers["Location"])
status, headers, body = fetch(callback)
if status != 303:
    sys.exit(f"the sign-in was refused ({status}): {body[:800]}")

verifier = base64.urlsafe_b64encode(hashlib.sha256(b"bench-verifier").digest()).rstrip(b"=").decode()
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
query = urllib.parse.urlencode({
    "response_type": "code", "client_id": "mail-app", "redirect_uri": APP_REDIRECT, "scope": "openid email",
    "state": "bench", "code_challenge": challenge, "code_challenge_method": "S256",
})
back = through_provider(f"{PROVIDER}/auth?{query}")
code = urllib.parse.parse_qs(urllib.parse.urlparse(back).query)["code"][0]
status, headers, body = fetch(f"{PROVIDER}/token", {
    "grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT, "client_id": "mail-app",
    "code_verifier": verifier,
})
if status != 200:
    sys.exit(f"the token request failed ({status}): {body}")
print(json.loads(body)["access_token"])
