#!/usr/bin/env python3
"""Regenerates the committed seed corpora under fuzz/seeds/<target>/.

Run from anywhere: python3 fuzz/seeds/gen.py. Sources: the crates' own test
fixtures (RFC 4475 messages, SDP offers, RFC 4733 sequences, IVR flows and
scripts), the RFC 2617 / 7616 digest examples, and RTP packets taken from the
sample pcaps of sipp (Debian sip-tester, /usr/share/sip-tester) when present.
"""
import json
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEEDS = ROOT / "fuzz" / "seeds"


def out(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")


# --- SIP messages and stream framing --------------------------------------
rfc4475 = ROOT / "signaling/proto/tests/fixtures/rfc4475"
msgs = {}
for kind in ("valid", "invalid"):
    for p in sorted((rfc4475 / kind).glob("*.sip")):
        out("sip_message", f"rfc4475-{kind}-{p.stem}.sip", p.read_bytes())
        msgs[p.stem] = p.read_bytes()

OPTIONS = crlf("""OPTIONS sip:parley@192.0.2.2 SIP/2.0
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK74bf9;rport
Max-Forwards: 70
To: <sip:parley@192.0.2.2>
From: "Alice" <sip:alice@example.com>;tag=9fxced76sl
Call-ID: 3848276298220188511@192.0.2.1
CSeq: 1 OPTIONS
Contact: <sip:alice@192.0.2.1:5060;transport=tcp>
Content-Length: 0

""").encode()
INVITE_SDP = crlf("""v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 49170 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
""").encode()
INVITE = crlf(f"""INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.1;transport=tcp>
Record-Route: <sip:p1.example.com;lr>
Content-Type: application/sdp
l: {len(INVITE_SDP)}

""").encode() + INVITE_SDP
RESPONSE = crlf("""SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;received=192.0.2.1
To: <sip:alice@example.com>;tag=a6c85cf
From: <sip:alice@example.com>;tag=1928301774
Call-ID: a84b4c76e66711@pc33.example.com
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm="example.com", nonce="84a4cc6f3082121f32b42a2187831a9e", algorithm=SHA-256, qop="auth"
Content-Length: 0

""").encode()
out("sip_message", "options-tcp.sip", OPTIONS)
out("sip_message", "invite-sdp-compact-l.sip", INVITE)
out("sip_message", "401-sha256.sip", RESPONSE)

out("sip_frame", "one-options", OPTIONS)
out("sip_frame", "pipelined-invite-options", INVITE + OPTIONS)
out("sip_frame", "keepalive-then-message", b"\r\n\r\n" + OPTIONS + b"\r\n")
out("sip_frame", "partial-body", INVITE[:-10])
out("sip_frame", "response-and-ping", RESPONSE + b"\r\n\r\n")
out("sip_frame", "rfc4475-regaut01", msgs["regaut01"])
for p in sorted((ROOT / "signaling/proto/tests/fixtures/framing").glob("*.sip")):
    out("sip_frame", "regression-" + p.stem, p.read_bytes())

# --- Digest headers ------------------------------------------------------
digest = {
    "rfc2617-credentials": 'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    "rfc7616-sha256-credentials": 'Digest username="Mufasa", realm="http-auth@example.org", '
    'uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, '
    'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    "rfc2069-credentials": 'Digest username="bob", realm="atlanta.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", '
    'uri="sips:ss2.biloxi.example.com", response="dfe56131d1958046689d83306477ecc"',
    "challenge-md5-qop": 'Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int", '
    'nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5',
    "challenge-sha256-stale": 'Digest realm="example.com", nonce="84a4cc6f30", algorithm=SHA-256-sess, qop="auth", stale=true',
    "challenge-escaped": 'Digest realm="a \\"quoted\\" realm\\\\", nonce="n"',
}
for name, v in digest.items():
    out("sip_digest", name, v)

# --- SDP -----------------------------------------------------------------
for p in sorted((ROOT / "signaling/proto/tests/fixtures/sdp").glob("*.sdp")):
    text = p.read_text()
    out("sdp_answer", p.stem + ".sdp", crlf(text))
out("sdp_answer", "invite-body.sdp", INVITE_SDP)


# --- RTP and telephone-event ---------------------------------------------
def pcap_udp_payloads(path):
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(e + "I", data[20:24])[0]
    at = 24
    while at + 16 <= len(data):
        _, _, incl, _ = struct.unpack(e + "IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + incl]
        at += 16 + incl
        off = {1: 14, 113: 16, 0: 4}.get(linktype)
        if off is None or len(frame) < off + 28:
            continue
        ip = frame[off:]
        if ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        yield ip[ihl + 8:]


pcaps = pathlib.Path("/usr/share/sip-tester")
te_packets = []
if pcaps.is_dir():
    g711 = list(pcap_udp_payloads(pcaps / "g711a.pcap"))
    for i, pkt in enumerate(g711[:3]):
        out("rtp", f"sipp-g711a-{i}", pkt)
    for p in sorted(pcaps.glob("dtmf_2833_*.pcap")):
        pkts = list(pcap_udp_payloads(p))
        te_packets.append((p.stem, pkts))
        if pkts:
            out("rtp", f"sipp-{p.stem}-first", pkts[0])


def rtp(pt, seq, ts, ssrc, payload, marker=False, csrcs=(), ext=None, padding=0):
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if ext else 0) | len(csrcs)
    h = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    for c in csrcs:
        h += struct.pack("!I", c)
    if ext:
        profile, data = ext
        h += struct.pack("!HH", profile, len(data) // 4) + data
    pad = b""
    if padding:
        pad = bytes(padding - 1) + bytes([padding])
    return h + payload + pad


out("rtp", "pcmu-20", rtp(0, 1, 160, 0x1234, b"\xff" * 20, marker=True))
out("rtp", "csrcs-and-one-byte-ext", rtp(8, 65535, 4294967136, 7, b"\xd5" * 8, csrcs=(1, 2, 3),
                                         ext=(0xBEDE, b"\x10\xaa\x21\xbb\xcc\x00\x00\x00")))
out("rtp", "two-byte-ext-padding", rtp(111, 9, 960, 9, b"opus", ext=(0x1000, b"\x01\x02\xaa\xbb"), padding=4))
out("rtp", "telephone-event", rtp(101, 7, 16000, 42, bytes([5, 0x8a, 0x03, 0x20]), marker=True))

# --- RTCP ----------------------------------------------------------------
def rtcp(pt, count, body, padding=0):
    pad = bytes(padding - 1) + bytes([padding]) if padding else b""
    total = 4 + len(body) + len(pad)
    return struct.pack("!BBH", 0x80 | (0x20 if padding else 0) | count, pt, total // 4 - 1) + body + pad


block = struct.pack("!IIIIII", 0x1111, (12 << 24) | 0xFFFFFE, 70000, 33, 0x12345678, 65536)
sr = rtcp(200, 1, struct.pack("!IQIII", 0x2222, 0xE1E2E3E4_00000000, 16000, 100, 16000) + block)
rr = rtcp(201, 1, struct.pack("!I", 0x2222) + block)
rr0 = rtcp(201, 0, struct.pack("!I", 0x3333))
cname = b"agent@parley"
sdes_body = struct.pack("!I", 0x2222) + bytes([1, len(cname)]) + cname + b"\x00"
sdes_body += bytes((-len(sdes_body)) % 4)
sdes = rtcp(202, 1, sdes_body)
bye_reason = b"\x08shutdown"
bye = rtcp(203, 1, struct.pack("!I", 0x2222) + bye_reason + bytes((-len(bye_reason)) % 4))
app = rtcp(204, 3, b"\x00\x00\x22\x22name1234")
fb = rtcp(205, 1, struct.pack("!II", 0x2222, 0x1111))
out("rtcp", "sr-sdes", sr + sdes)
out("rtcp", "rr-sdes-bye", rr + sdes + bye)
out("rtcp", "rr-empty-padded", rtcp(201, 0, struct.pack("!I", 0x3333), padding=4) + sdes)
out("rtcp", "reduced-size-fb", fb)
out("rtcp", "sr-app-bye", sr + app + bye)
out("rtcp", "rr-only", rr0)

# --- RFC 4733 receiver sequences ------------------------------------------
# Record: [delta_ms/2, control, timestamp (4), payload (4)]; see dtmf_events.rs.
seq_file = ROOT / "media/core/tests/data/rfc4733_sequences.txt"
name, recs, last = None, b"", 0
for line in seq_file.read_text().splitlines():
    f = line.split()
    if not f or f[0].startswith("#"):
        continue
    if f[0] == "scenario":
        name, recs, last = f[1], b"", 0
    elif f[0] == "p":
        at, m, ts, ev, e, dur = int(f[1]), f[2] == "M", int(f[3]), int(f[4]), f[5] == "E", int(f[6])
        delta = min((at - last) // 2, 255)
        last = at
        recs += bytes([delta, 1 if m else 0]) + struct.pack("!I", ts % 2**32)
        recs += bytes([ev, (0x80 if e else 0) | 10]) + struct.pack("!H", dur % 65536)
    elif f[0] == "t":
        at = int(f[1])
        delta = min((at - last) // 2, 255)
        last = at
        # A timeout call with a short (refused) payload.
        recs += bytes([delta, 2 | (1 << 5)]) + bytes(8)
    elif f[0] == "end" and name:
        out("dtmf_events", name, recs)
for stem, pkts in te_packets:
    recs = b""
    for pkt in pkts:
        if len(pkt) >= 16:
            recs += bytes([10, 1 if pkt[1] & 0x80 else 0]) + pkt[4:8] + pkt[12:16]
    if recs:
        out("dtmf_events", "sipp-" + stem, recs)

# --- IVR flows and scripts -----------------------------------------------
ivr = ROOT / "ivr/tests/fixtures"
for p in sorted((ivr / "flows").glob("*.json")):
    flow = p.read_bytes()
    out("ivr_flow", "flow-" + p.stem + ".json", flow)
    # The same flow with a scripted call after the NUL (see ivr_flow.rs).
    out("ivr_flow", "flow-" + p.stem + "-with-steps", flow + b"\x00" + bytes([2 + 12 * 4, 0 + 12, 11, 2, 9, 5, 7, 3]))
for p in sorted((ivr / "invalid").glob("*.json")):
    case = json.loads(p.read_text())
    out("ivr_flow", "invalid-" + p.stem + ".json", json.dumps(case["flow"], indent=1))
for p in sorted((ivr / "scripts").glob("*.json"))[:12]:
    case = json.loads(p.read_text())
    out("ivr_flow", "script-" + p.stem + ".json", json.dumps(case["script"], indent=1))

# --- Audio files (prompt uploads) -------------------------------------------
# The first byte selects the container hint (0 wav, 1 mp3, 2 ogg, 3 flac; see
# audio_decode.rs); the small tone prompts of the web tests follow.
prompts = ROOT / "web/tests/fixtures/prompts"
for i, ext in enumerate(["wav", "mp3", "ogg", "flac"]):
    p = prompts / ("tone." + ext)
    if p.exists():
        out("audio_decode", "tone-" + ext, bytes([i]) + p.read_bytes())
