-- Per-tenant speech model (issue 16): which installed Whisper model transcribes the
-- tenant's calls ('auto': the server's default, chosen by machine size) and the spoken
-- language forced on a multilingual model (NULL: detected per utterance).
ALTER TABLE speech_settings ADD COLUMN speech_model TEXT NOT NULL DEFAULT 'auto';
ALTER TABLE speech_settings ADD COLUMN language TEXT;
