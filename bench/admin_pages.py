"""Times the administration pages of a running Gatehouse, as an administrator's browser loads them (for
bench/admin-pages).

    python3 bench/admin_pages.py PUBLIC_URL ADMIN_PASSWORD --requests N --domains N --mailboxes N \
        [--label NAME] [--json FILE]

PUBLIC_URL is Gatehouse's public listener (http://127.0.0.1:PORT). The database is the one gatehouse-bench-seed
filled with --domains and --mailboxes (the pages name a mailbox and a domain it created). Logs in at /admin (the
login form's CSRF token, then the form POSTed, the 303 followed with the cookies kept), then loads each page
once to warm up and N times timed: from the request's start until its body is read completely, one request at
a time, a new connection each (urllib). Every answer must be 200 and not the login form. Prints a markdown
table (median, p95, max in ms, and the page's size) and writes the same as JSON; exits 1 when a page failed
(the others are still measured).
"""

import argparse
import html.parser
import http.cookiejar
import json
import math
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Marks the login page: an answer carrying it means the session was lost.
LOGIN_FORM = 'id="login"'


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class CsrfField(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.value = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") == "csrf" and self.value is None:
            self.value = attrs.get("value")


def seeded_address(index: int, domains: int, mailboxes: int) -> str:
    """The address gatehouse-bench-seed gives mailbox `index` (consecutive blocks per domain)."""
    return f"user{index:05}@d{index * domains // max(mailboxes, 1):03}.example"


def pages(domains: int, mailboxes: int) -> list[tuple[str, str]]:
    """(name, path) of every page measured."""
    user = urllib.parse.quote(seeded_address(42, domains, mailboxes), safe="")
    domain = f"d{min(7, domains - 1):03}.example"
    return [
        ("dashboard (24 hours)", "/admin"),
        ("mailboxes, first page", "/admin/mailboxes"),
        ("mailboxes, page 500", "/admin/mailboxes?page=500"),
        ("mailboxes by quota, descending", "/admin/mailboxes?sort=quota&dir=desc"),
        ("mailboxes, search user0424", "/admin/mailboxes?q=user0424"),
        ("mailboxes, search 'team 7'", "/admin/mailboxes?q=team%207"),
        (f"mailboxes of {domain}, inactive", f"/admin/mailboxes?domain={domain}&state=inactive"),
        ("one mailbox", f"/admin/mailboxes/{user}"),
        ("domains", "/admin/domains"),
        ("auth log, first page", "/admin/logs/auth"),
        ("auth log, page 150", "/admin/logs/auth?page=150"),
        ("auth log of one user", f"/admin/logs/auth?user={user}"),
        ("auth log, failures from 203.0.113.7", "/admin/logs/auth?from=203.0.113.7&result=failure"),
        ("auth log, imap failures", "/admin/logs/auth?service=imap&result=failure"),
        ("audit log", "/admin/logs/audit"),
        # The dashboard is /admin (no trailing slash: /admin/ is no route and answers an empty 404).
        ("dashboard (7 days)", "/admin?period=7d"),
    ]


class Browser:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def call(self, path: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=120) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers, answer.read()

    def login(self, password: str) -> None:
        status, _, page = self.call("/admin")
        parser = CsrfField()
        parser.feed(page.decode("utf-8", "replace"))
        if status != 200 or not parser.value:
            raise SystemExit(f"GET /admin answered {status} without a login form's CSRF token")
        form = urllib.parse.urlencode({"csrf": parser.value, "username": "admin", "password": password}).encode()
        status, headers, body = self.call("/admin", form, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303:
            raise SystemExit(f"the admin login answered {status}: {body[:300]!r}")
        location = headers.get("Location", "")
        status, _, body = self.call(urllib.parse.urlsplit(location)._replace(scheme="", netloc="").geturl() or "/admin")
        if status != 200 or LOGIN_FORM.encode() in body:
            raise SystemExit(f"after the login, {location} answered {status} {'with the login form' if status == 200 else ''}")


def nearest_rank(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base")
    parser.add_argument("password")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--mailboxes", type=int, default=50000)
    parser.add_argument("--label", default="")
    parser.add_argument("--json")
    args = parser.parse_args()

    browser = Browser(args.base)
    browser.login(args.password)
    results = []
    failed = False
    for name, path in pages(args.domains, args.mailboxes):
        timings, problem, size = [], None, 0
        for attempt in range(args.requests + 1):
            started = time.perf_counter()
            status, _, body = browser.call(path)
            elapsed_ms = (time.perf_counter() - started) * 1000
            if status != 200 or LOGIN_FORM.encode() in body:
                snippet = body[:200].decode("utf-8", "replace").replace("\n", " ")
                problem = f"answered {status}" + (" with the login form" if status == 200 else f": {snippet}")
                break
            size = len(body)
            if attempt > 0:  # the first is the warm-up
                timings.append(elapsed_ms)
        entry = {"page": name, "path": path}
        if problem:
            failed = True
            entry["error"] = problem
            print(f"{args.label} {path}: {problem}", file=sys.stderr)
        else:
            ordered = sorted(timings)
            entry.update(
                requests=len(ordered),
                median_ms=round(statistics.median(ordered), 2),
                p95_ms=round(nearest_rank(ordered, 0.95), 2),
                max_ms=round(ordered[-1], 2),
                bytes=size,
            )
            print(f"{args.label} {path}: median {entry['median_ms']} ms, p95 {entry['p95_ms']} ms, max {entry['max_ms']} ms",
                  file=sys.stderr)
        results.append(entry)

    print("| page | path | median ms | p95 ms | max ms | size |")
    print("|---|---|---:|---:|---:|---:|")
    for entry in results:
        if "error" in entry:
            print(f"| {entry['page']} | `{entry['path']}` | FAILED: {entry['error']} | | | |")
        else:
            print(f"| {entry['page']} | `{entry['path']}` | {entry['median_ms']:.1f} | {entry['p95_ms']:.1f} | "
                  f"{entry['max_ms']:.1f} | {entry['bytes'] / 1024:.0f} KiB |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"label": args.label, "requests": args.requests, "pages": results}, out, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
