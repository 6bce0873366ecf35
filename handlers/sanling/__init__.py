"""三零 service: 三联 liaisons and visits, the 三联信箱 mailbox, procedure guides, 预审 and 联办, 一月一汇报."""
