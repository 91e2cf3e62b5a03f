#!/usr/bin/env python3
"""Writes the seed corpus of the `accounting` fuzz target (fuzz/corpus/accounting): realistic
Accounting-Requests (RFC 2866) from the gateways tessera serves, signed with the target's fixed
secret `fuzz-secret` (Request Authenticator, and Message-Authenticator where present), so that
the fuzzer starts past the authenticator check.

Names: `bad-*` carry no identity change and are dropped; `none-*` are answered but change
nothing; every other seed is a logon, logoff or reset. Run from anywhere:
    python3 fuzz/scripts/accounting_seeds.py
"""
import hashlib
import hmac
import os
import struct

SECRET = b"fuzz-secret"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "accounting")

USER_NAME, NAS_IP, NAS_PORT, SERVICE_TYPE, FRAMED_PROTOCOL, FRAMED_IP = 1, 4, 5, 6, 7, 8
CLASS, VSA, CALLING_STATION, NAS_IDENTIFIER, PROXY_STATE = 25, 26, 31, 32, 33
STATUS, DELAY, IN_OCTETS, OUT_OCTETS, SESSION_ID, AUTHENTIC = 40, 41, 42, 43, 44, 45
SESSION_TIME, IN_PACKETS, OUT_PACKETS, TERMINATE_CAUSE = 46, 47, 48, 49
EVENT_TIMESTAMP, NAS_PORT_TYPE, MA, NAS_PORT_ID = 55, 61, 80, 87
FRAMED_IPV6_PREFIX, FRAMED_IPV6_ADDRESS = 97, 168
START, STOP, INTERIM, ON, OFF = 1, 2, 3, 7, 8


def u32(v):
    return struct.pack(">I", v)


def attr(t, v):
    return bytes([t, len(v) + 2]) + v


def packet(attrs, ident=1, ma=False, code=4):
    body = b"".join(attr(t, v) for t, v in attrs)
    if ma:
        # Message-Authenticator first, as most gateways send it.
        body = attr(MA, bytes(16)) + body
    length = 20 + len(body)
    head = bytes([code, ident]) + struct.pack(">H", length)
    if ma:
        mac = hmac.new(SECRET, head + bytes(16) + body, hashlib.md5).digest()
        body = body[:2] + mac + body[18:]
    auth = hashlib.md5(head + bytes(16) + body + SECRET).digest()
    return head + auth + body


def juniper(session, user, ip, status, extra=()):
    return [
        (STATUS, u32(status)),
        (USER_NAME, user),
        (SESSION_ID, session),
        (FRAMED_IP, bytes(ip)),
        (NAS_IP, bytes([192, 0, 2, 1])),
        (NAS_IDENTIFIER, b"srx-edge-1"),
        (NAS_PORT_TYPE, u32(5)),
        (EVENT_TIMESTAMP, u32(1795420800)),
        (AUTHENTIC, u32(1)),
        (DELAY, u32(0)),
        *extra,
    ]


SEEDS = {
    "start-ipv4": packet(juniper(b"4201", b"alice", [10, 8, 0, 5], START)),
    "start-domain-backslash": packet(juniper(b"4202", b"EXAMPLE\\bob", [10, 8, 0, 6], START), 2),
    "start-upn": packet(juniper(b"4203", b"carol@example.com", [10, 8, 0, 7], START), 3),
    "start-message-authenticator": packet(
        juniper(b"4204", b"dave", [10, 8, 0, 8], START), 4, ma=True),
    "start-class-and-proxy-state": packet(
        juniper(b"4205", b"erin", [10, 8, 0, 9], START,
                [(CLASS, b"tessera:erin"), (PROXY_STATE, b"\x00\x01\x02")]), 5),
    "start-ipv6-address": packet([
        (STATUS, u32(START)), (USER_NAME, b"frank"), (SESSION_ID, b"v6-1"),
        (FRAMED_IPV6_ADDRESS, bytes.fromhex("20010db8000000000000000000000042")),
        (NAS_IP, bytes([192, 0, 2, 1])),
    ], 6),
    "interim-ipv6-prefix": packet([
        (STATUS, u32(INTERIM)), (USER_NAME, b"grace@example.com"), (SESSION_ID, b"v6-2"),
        (FRAMED_IPV6_PREFIX, bytes([0, 64]) + bytes.fromhex("20010db800000007")),
        (SESSION_TIME, u32(600)), (IN_OCTETS, u32(123456)), (OUT_OCTETS, u32(654321)),
    ], 7),
    "interim-update": packet(
        juniper(b"4201", b"alice", [10, 8, 0, 5], INTERIM,
                [(SESSION_TIME, u32(300)), (IN_PACKETS, u32(100)), (OUT_PACKETS, u32(90))]), 8),
    "stop-with-counters": packet(
        juniper(b"4201", b"alice", [10, 8, 0, 5], STOP,
                [(SESSION_TIME, u32(3600)), (IN_OCTETS, u32(1 << 20)),
                 (OUT_OCTETS, u32(1 << 22)), (TERMINATE_CAUSE, u32(1))]), 9),
    "stop-session-only": packet([
        (STATUS, u32(STOP)), (SESSION_ID, b"4202"), (TERMINATE_CAUSE, u32(4)),
    ], 10),
    "accounting-on": packet([
        (STATUS, u32(ON)), (NAS_IP, bytes([192, 0, 2, 1])), (NAS_IDENTIFIER, b"srx-edge-1"),
    ], 11),
    "accounting-off": packet([(STATUS, u32(OFF)), (NAS_IP, bytes([192, 0, 2, 1]))], 12),
    # strongSwan/ocserv-style: NUL-terminated strings, a Calling-Station-Id, NAS-Port-Id.
    "start-nul-terminated": packet([
        (STATUS, u32(START)), (USER_NAME, b"heidi\x00"), (SESSION_ID, b"5f3a\x00"),
        (FRAMED_IP, bytes([172, 16, 0, 2])), (CALLING_STATION, b"198.51.100.7[4500]"),
        (NAS_PORT_ID, b"ikev2-rw"), (NAS_PORT, u32(17)),
    ], 13),
    "start-vendor-specific": packet(
        juniper(b"4206", b"ivan", [10, 8, 0, 10], START,
                [(VSA, u32(2636) + attr(1, b"vpn-users")),
                 (SERVICE_TYPE, u32(2)), (FRAMED_PROTOCOL, u32(1))]), 14),
    # ocserv sends its Start before the address is known: answered, no entry (yet).
    "none-start-without-address": packet([
        (STATUS, u32(START)), (USER_NAME, b"judy"), (SESSION_ID, b"oc-1"),
        (CALLING_STATION, b"203.0.113.9"),
    ], 15),
    "none-tunnel-status": packet([(STATUS, u32(12)), (SESSION_ID, b"t-1")], 16),
    "none-address-nas-assigned": packet(
        juniper(b"4207", b"mallory", [255, 255, 255, 254], START), 17),
    "bad-no-status-type": packet([(USER_NAME, b"alice"), (SESSION_ID, b"1"),
                                  (FRAMED_IP, bytes([10, 0, 0, 1]))], 18),
    "bad-no-session-id": packet([(STATUS, u32(START)), (USER_NAME, b"alice"),
                                 (FRAMED_IP, bytes([10, 0, 0, 1]))], 19),
    "bad-empty-session-id": packet([(STATUS, u32(STOP)), (SESSION_ID, b"\x00\x00")], 20),
    "bad-truncated": packet(juniper(b"4208", b"alice", [10, 8, 0, 5], START), 21)[:40],
    "bad-short-status": packet([(STATUS, b"\x00\x01"), (SESSION_ID, b"x")], 22),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
