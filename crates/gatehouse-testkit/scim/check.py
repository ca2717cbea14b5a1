"""Runs scim2-tester's conformance checks against a SCIM 2.0 server and prints one line per check.

    python check.py URL TOKEN ADDRESS

URL is the SCIM base (http://127.0.0.1:PORT/scim/v2), TOKEN a bearer token, ADDRESS the one mail address the
checks may create Users with: the server derives the mailbox from userName, which the tester otherwise fills
with random text, so the tester is told to use ADDRESS (its generated values come from an attribute's canonical
values when it has some). Exits 1 when a check ends in ERROR or CRITICAL; SKIPPED checks (what the server
declares it does not offer) are printed but do not fail.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import ResourceType, Schema, ScimProvider, ServiceProviderConfig
from scim2_tester import Status, check_server


def main() -> int:
    url, token, address = sys.argv[1:4]
    client = SyncSCIMClient(Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30))
    resource_types = client.query(ResourceType).resources or []
    schemas = client.query(Schema).resources or []
    config = client.query(ServiceProviderConfig)
    for schema in schemas:
        for attribute in schema.attributes or []:
            if attribute.name == "userName":
                attribute.canonical_values = [address]
    client.provider = ScimProvider.from_discovery(schemas, resource_types, config)
    failed = 0
    for result in check_server(client):
        print(f"{result.status.name:8} {result.resource_type or '-':6} {result.title}: {result.reason or ''}")
        if result.status in (Status.ERROR, Status.CRITICAL):
            failed += 1
    print(f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
