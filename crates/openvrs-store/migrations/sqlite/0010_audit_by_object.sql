-- openvrs schema, version 10: a person's audit trail without reading the whole log.

-- Every entry about a person has an object starting "person:<address number>"; this index finds
-- them by range (byte order, so that the range is exact).
CREATE INDEX audit_log_object ON audit_log (municipality_code, object);
