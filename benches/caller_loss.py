"""Reads every call of one customer from Parley's timeline and prints, space-separated:
calls stored, calls bridged (a transfer answered in the IVR trail), RTP packets lost and
expected on Parley's caller legs (RFC 3550 figures stored with each call).

    python3 benches/caller_loss.py HTTP TOKEN CUSTOMER_ID
"""
import json
import sys
import urllib.request

http, token, cust = sys.argv[1:]
lost = expected = calls = answered = 0
cursor = None
while True:
    url = f"{http}/api/v1/customers/{cust}/timeline?limit=200" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req))
    for i in page["items"]:
        body = json.loads(i["body"])
        calls += 1
        answered += any(e.get("type") == "transfer" and e.get("outcome") == "answered" for e in body.get("ivr_trail", []))
        q = body.get("quality") or {}
        lost += max(q.get("cumulative_lost", 0), 0)
        expected += q.get("packets_expected", 0)
    cursor = page.get("next_cursor")
    if not cursor:
        break
print(calls, answered, lost, expected)
