-- The short name SMS texts use instead of the address (issue 23): the
-- confirmation must fit one UCS2 segment, so it is at most
-- texts::SMS_LABEL_UNITS_MAX characters, checked before it is written.
-- NULL: the address, shortened by texts::sms_place.
ALTER TABLE premises ADD COLUMN sms_label TEXT;
