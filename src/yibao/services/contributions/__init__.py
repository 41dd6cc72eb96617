"""Enrolment and contributions: rules per area and year, assessments,
payments, arrears and suspensions, the monthly credit to the individual
accounts, and individual enrolment with its voucher and bank debits (seed 004)."""
