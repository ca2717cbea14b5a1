"""Signs a mailbox in at Gatehouse's login page and opens its webmail, as a browser would, and prints the
Cookie header that nginx then forwards to /nginx/auth with every SOGo request (for bench/run).

    python3 bench/webmail_session.py PUBLIC_URL ADDRESS PASSWORD

PUBLIC_URL is Gatehouse's public listener (http://127.0.0.1:PORT). Fails loudly when a step does not answer as
a browser would see it.
"""

import html.parser
import http.cookiejar
import sys
import urllib.error
import urllib.parse
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class CsrfField(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.value = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") == "csrf":
            self.value = attrs.get("value")


def main() -> int:
    base, address, password = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

    def call(path, data=None, headers=None):
        request = urllib.request.Request(base + path, data=data, headers=headers or {})
        try:
            with opener.open(request, timeout=30) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers, answer.read().decode()

    status, _, page = call("/")
    parser = CsrfField()
    parser.feed(page)
    if status != 200 or not parser.value:
        raise SystemExit(f"the login page answered {status} without a CSRF token")
    form = urllib.parse.urlencode({"csrf": parser.value, "username": address, "password": password}).encode()
    status, _, body = call("/", form, {"Content-Type": "application/x-www-form-urlencoded"})
    if status != 303:
        raise SystemExit(f"the login answered {status}: {body[:200]}")
    status, headers, body = call(f"/sogo-auth?login={urllib.parse.quote(address)}", None, {"Sec-Fetch-Site": "same-origin"})
    if status != 303 or headers.get("Location") != "/SOGo/so/":
        raise SystemExit(f"opening webmail answered {status} {headers.get('Location')}: {body[:200]}")
    print("; ".join(f"{cookie.name}={cookie.value}" for cookie in jar))
    return 0


if __name__ == "__main__":
    sys.exit(main())
