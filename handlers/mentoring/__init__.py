"""导师帮带 (SPEC §3a): the dated 帮带 record, contacts and plans, 季评 and 考核, the mentor pool, open classes."""
