-- openvrs schema, version 8: certificates through the resident app and convenience-store kiosks.

-- Whether the municipality offers its certificates at convenience-store kiosks (コンビニ交付);
-- set by its own staff.
ALTER TABLE municipalities ADD COLUMN kiosk SMALLINT NOT NULL DEFAULT 0;

-- The application an app or kiosk certificate answered: a digest of what the card signed,
-- never its content. The same application twice is a replay and is refused.
ALTER TABLE certificates ADD COLUMN application TEXT;
CREATE UNIQUE INDEX certificates_application ON certificates (municipality_code, application);
