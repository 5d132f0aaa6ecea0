-- Issue #13 (media): SDES-SRTP (RFC 4568) policy per trunk and per phone (user).
--   off      plain RTP only; RTP/SAVP offers are declined
--   optional SRTP answered when the peer offers RTP/SAVP with a=crypto; Parley's own
--            offers are plain RTP/AVP (the default: nothing changes for peers that do
--            not offer SRTP)
--   required an offer without usable SRTP gets 488; Parley's offers are RTP/SAVP
-- SDES keys travel in the SDP, so they are as safe as the signalling (SECURITY.md).
ALTER TABLE trunks ADD COLUMN srtp TEXT NOT NULL DEFAULT 'optional'
    CHECK (srtp IN ('off', 'optional', 'required'));
ALTER TABLE users ADD COLUMN srtp TEXT NOT NULL DEFAULT 'optional'
    CHECK (srtp IN ('off', 'optional', 'required'));
