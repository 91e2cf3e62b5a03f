"""A third-party OAuth 2.0 client (authlib) against tessera's identity API.

usage: oauth_client.py BASE_URL CA_FILE CLIENT_ID CLIENT_SECRET AUTH_METHOD IP
Fetches a token with the client credentials grant (AUTH_METHOD is client_secret_basic or
client_secret_post), then prints the IP query's JSON answer for IP.
"""
import json
import sys

from authlib.integrations.requests_client import OAuth2Session

base, cafile, client_id, secret, method, ip = sys.argv[1:]
session = OAuth2Session(
    client_id, secret, token_endpoint_auth_method=method, scope="identity:read"
)
token = session.fetch_token(
    base + "/api/v1/oauth/token", grant_type="client_credentials", verify=cafile
)
assert token["token_type"].lower() == "bearer", token
assert token["scope"] == "identity:read", token
answer = session.get(f"{base}/api/v1/identities/{ip}", timeout=10, verify=cafile)
answer.raise_for_status()
print(json.dumps(answer.json()))
