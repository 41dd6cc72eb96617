"""The bureau's dashboard (issue 17): every figure of the staff member's area
for a period, read in one transaction under REPEATABLE READ so that its
totals agree with each other, and audited (``dashboard.py``)."""
